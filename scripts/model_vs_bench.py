"""A candidate model's Kodak BD-rates against the committed bench's curves, without re-running the bench.

Encodes every image of a folder at every quality level with the candidate
(a shipped model id or a .safetensors file), measures every stage prefix from
the real bytes exactly as `cdcodec bench` does (`bench/cdcodec_source.py`,
`bench/metrics.py`), adds those points to a copy of a bench results file as one
more codec, and prints the BD-rates of the candidate and of the file's own
codecs against a reference (the same curves and envelopes as
`results/bench/rereference.py`), over a bpp window if given. The baselines in
the results file must have been measured on the same images.

    python scripts/model_vs_bench.py --model /path/to/candidate.safetensors \\
        --images ../shared/data/kodak --results results/bench/kodak.json --bpp-window 0.25 1.5 \\
        --out /tmp/candidate.json

`--tune psnr` measures the model with the encoder's search weighing squared
error alone (`cdcodec encode --tune psnr`), `--effort R` with R rounds of search,
`--no-temper` with the shipped tables as they are (the encoder tempers them per
channel by default since session 61, `cdcodec.bitstream.temper`; `--temper`, the
default, is kept for the commands written before).
By default the search weighs what the model was trained for, which only
trained/manifest.json records: a weights file whose model id the manifest does
not know needs `--search-ms-ssim-share S` (its training's share of 1 − MS-SSIM,
0.3 for the mixed recipe) or `--tune psnr`. Without that, the search would weigh
squared error alone unannounced, and such a model's MS-SSIM curve would compare
a PSNR-tuned search with the shipped model's mixed one (session 34's Kodak run
of cdc-mix-9 did, which made the candidate look worse in MS-SSIM than it is);
`--jobs N` encodes N images at a time, one torch thread each, in spawned worker
processes; `--pick kodim01 kodim07 ...` measures those images only, against the
results file cut to them (a quick probe). Without `--images`, the photos bundled with scikit-image (`cdcodec
bench`'s default set, `results/bench/skimage.json`).
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from itertools import repeat
from multiprocessing import get_context
from pathlib import Path

import torch

from cdcodec.bench.cdcodec_source import cdcodec_points, warm_up
from cdcodec.bench.codecs import LOSSY
from cdcodec.bench.images import bundled_images, folder_images
from cdcodec.bench.jsonfile import read_json, write_json
from cdcodec.bench.metrics import measure
from cdcodec.codec.allocator import keep_freed_memory
from cdcodec.codec.pipeline import TUNINGS, get_model
from cdcodec.codec.weights import ModelNotFoundError, model_record

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results" / "bench"))
from rereference import cut_to_images, print_bd_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="shipped model id or .safetensors file")
    parser.add_argument("--images", type=Path, help="folder of images (default: the photos bundled with scikit-image, as `cdcodec bench`)")
    parser.add_argument("--results", type=Path, required=True, help="bench results JSON with the baselines")
    parser.add_argument("--reference", default="webp")
    parser.add_argument("--bpp-window", nargs=2, type=float, metavar=("LOW", "HIGH"))
    parser.add_argument("--out", type=Path, help="write the results file with the candidate's points added")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="candidate", help="the candidate's codec name in the results (to add a second one to an --out file)")
    parser.add_argument("--tune", choices=TUNINGS, default="model", help="what the encoder's search weighs (as `cdcodec encode --tune`)")
    parser.add_argument("--effort", type=int, default=None, help="rounds of the encoder's search (as `cdcodec encode --effort`; default: its default)")
    parser.add_argument("--search-ms-ssim-share", type=float, metavar="S",
                        help="the share of 1 − MS-SSIM the search weighs (the model's training share); "
                        "required for a model the manifest does not know, unless --tune psnr")
    parser.add_argument("--temper", action=argparse.BooleanOptionalAction, default=True,
                        help="let every latent stage temper its tables per channel (`cdcodec.bitstream.temper`; the encoder's default)")
    parser.add_argument("--jobs", type=int, default=1, help="images encoded at a time, one thread each (with --jobs above 1)")
    parser.add_argument("--pick", nargs="+", metavar="NAME",
                        help="only these images (e.g. kodim01 kodim07): the candidate on them, the results file cut to them")
    args = parser.parse_args()
    keep_freed_memory()
    options = {"tune": args.tune, **search_share(args)}
    if args.effort is not None:
        options["search_rounds"] = args.effort
    options["temper"] = args.temper
    doc = read_json(args.results)
    images = folder_images(args.images) if args.images else bundled_images()
    if args.pick:
        missing = set(args.pick) - {image.name for image in images}
        if missing:
            raise SystemExit(f"no such images: {', '.join(sorted(missing))}")
        images = [image for image in images if image.name in args.pick]
        doc = cut_to_images(doc, args.pick)
    if sorted(image.name for image in images) != sorted(entry["name"] for entry in doc["images"]):
        raise SystemExit("the results file was measured on other images")
    if any(codec["name"] == args.name for codec in doc["codecs"]):
        raise SystemExit(f"the results file already has a codec named {args.name!r}: pass another --name")
    points = []
    for image, measured in _measure_images(images, args.model, options, args.jobs, args.threads):
        points.extend(dict(point, codec=args.name) for point in measured)
        print(f"{image.name}: {len(measured)} points", flush=True)
    doc = dict(doc, codecs=doc["codecs"] + [{"name": args.name, "kind": LOSSY, "label": f"cdcodec ({args.model})"}],
               measurements=doc["measurements"] + points)
    doc.setdefault("candidates", {})[args.name] = {"model": args.model, "tune": args.tune, "effort": args.effort,
                                                   "search_ms_ssim_share": args.search_ms_ssim_share, "temper": args.temper, "command": " ".join(sys.argv)}
    if args.out:
        write_json(args.out, doc)
    print_bd_table(doc, args.reference, tuple(args.bpp_window) if args.bpp_window else None)


def _measure_images(images, model_spec: str, encode_options: dict, jobs: int, threads: int):
    """(image, its points) in order: with jobs above 1 from that many spawned
    worker processes of one thread each, otherwise here on `threads` threads."""
    if jobs <= 1:
        for image in images:
            yield image, _image_points(image, model_spec, encode_options, threads)
        return
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=keep_freed_memory) as pool:
        yield from zip(images, pool.map(_image_points, images, repeat(model_spec), repeat(encode_options), repeat(1)))


def search_share(args) -> dict:
    """The encode option that sets the search's MS-SSIM share, if one is given; exits when
    none is and the search would otherwise fall back to squared error for an unknown model."""
    share = args.search_ms_ssim_share
    if share is not None:
        if args.tune == "psnr":
            raise SystemExit("--tune psnr searches squared error alone: leave --search-ms-ssim-share out")
        if not 0.0 <= share <= 1.0:
            raise SystemExit("--search-ms-ssim-share must lie in 0-1")
        return {"search_ms_ssim_share": share}
    if args.tune == "model" and args.effort != 0:  # effort 0: no search, nothing to weigh
        model_id = get_model(args.model).codec.config.model_id
        try:
            model_record(model_id)
        except ModelNotFoundError:
            raise SystemExit(f"trained/manifest.json does not know model {model_id!r}, so what it was trained for is unknown: "
                             "pass --search-ms-ssim-share S (0.3 for the mixed recipe) or --tune psnr") from None
    return {}


@lru_cache(maxsize=None)
def _warm_model(model_spec: str):
    """The model, loaded and warmed up once per process (a weights path given as such
    would be read at every encode; the first encode would pay for loading)."""
    model = get_model(model_spec)
    warm_up(model)
    return model


def _image_points(image, model_spec: str, encode_options: dict, threads: int) -> list[dict]:
    """Every operating point of one image, measured as the bench does (a worker's job with --jobs)."""
    torch.set_num_threads(threads)
    model = _warm_model(model_spec)
    points = []
    for point in cdcodec_points(image.pixels, model, **encode_options):
        measured = measure(image.pixels, point.decoded, len(point.data))
        points.append({"image": image.name, "setting": point.setting, **measured, "encode_s": point.encode_s, "decode_s": point.decode_s})
    return points


if __name__ == "__main__":
    main()
