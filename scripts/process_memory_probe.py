"""What one long-running process costs: resident memory across many encodes, or the time of repeated ones.

By default the process encodes one image at every quality level of the
default model, with and without `--tune psnr`, and prints its resident memory
after each level: memory that grows with every image coded shows here
(README, "Memory of a long-running process"). With `--repeat LEVEL` it
encodes and decodes the image three times at that level instead and prints
each one's CPU seconds, so that what a process keeps between calls shows as a
faster second call. One thread, freed memory kept, as the `cdcodec` command
runs. Run it at another commit through a worktree on PYTHONPATH (a folder
holding a `cdcodec` link to the worktree) to compare builds:

    python scripts/process_memory_probe.py ../shared/data/kodak/kodim01.png
    python scripts/process_memory_probe.py ../shared/data/kodak/kodim01.png --repeat 2
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from PIL import Image

from cdcodec.codec.allocator import keep_freed_memory
from cdcodec.codec.pipeline import decode, encode, quality_levels
from cdcodec.codec.weights import load_shipped


def resident_mib() -> int:
    """This process's resident memory now (VmRSS), in MiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    raise SystemExit("no VmRSS in /proc/self/status: this probe needs Linux")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--repeat", type=int, metavar="LEVEL", help="time three encodes and decodes at this level")
    args = parser.parse_args()
    keep_freed_memory()
    torch.set_num_threads(1)
    image = np.asarray(Image.open(args.image).convert("RGB"))
    load_shipped()
    print(f"model loaded: {resident_mib()} MiB resident", flush=True)
    if args.repeat is not None:
        for run in range(3):
            start = time.process_time()
            data = encode(image, quality=args.repeat)
            encoded = time.process_time()
            decode(data)
            print(f"run {run}: encode {encoded - start:.1f} s, decode {time.process_time() - encoded:.1f} s CPU, {len(data)} bytes", flush=True)
        return
    for level in range(quality_levels(None)):
        start = time.perf_counter()
        for tune in ("model", "psnr"):
            encode(image, quality=level, tune=tune)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"level {level}: {time.perf_counter() - start:.0f} s, {resident_mib()} MiB resident, {peak} MiB at most", flush=True)


if __name__ == "__main__":
    main()
