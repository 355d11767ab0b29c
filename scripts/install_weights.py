"""Ship a trained weights file into trained/ with its manifest record, from a file the record was saved to.

The training commands install what they make (`--install`), but a chain of
`train-stage` and `refit-tables` runs ends in a weights file whose record (the
commands, data, steps, device and times of the whole chain) is written by hand,
e.g. `results/codec-study/mix14-training.json`. This installs such a pair the
way the training commands do (`cli/train.py`, `install_model`), so that a
candidate is set up the same way each time: the same manifest entry, so the
same `cdcodec bench` fingerprint, and a resumed Kodak run reuses its points.

    python scripts/install_weights.py cdc-mix-14.safetensors results/codec-study/mix14-training.json --default

A candidate made by a probe carries the probe's model id (every file it writes
would name it); `--model-id` ships it under the project's next id instead, the
same weights and tables in a file written again under the new id.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from cdcodec.cli.train import install_model
from cdcodec.codec.training.train import renamed
from cdcodec.codec.weights import load_codec, save_codec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, help="the .safetensors file (its model id is read from it)")
    parser.add_argument("record", type=Path, help="JSON of the manifest's `training` record for it")
    parser.add_argument("--default", action="store_true", help="make it the default model")
    parser.add_argument("--model-id", help="ship it under this id instead of the one in the file")
    args = parser.parse_args()
    codec = load_codec(args.weights)[0]
    record = json.loads(args.record.read_text())
    with tempfile.TemporaryDirectory() as scratch:
        weights = args.weights
        if args.model_id and args.model_id != codec.config.model_id:
            codec = renamed(codec, args.model_id)
            weights = Path(scratch) / f"{args.model_id}.safetensors"
            save_codec(codec, weights)
        target = install_model(weights, codec.config.model_id, codec.config.to_dict(), record, make_default=args.default)
    print(f"installed {codec.config.model_id} as {target}" + (" (the default model)" if args.default else ""))


if __name__ == "__main__":
    main()
