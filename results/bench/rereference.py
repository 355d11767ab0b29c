"""BD-rates of every lossy codec in a bench results file against another reference, without re-measuring.

`cdcodec bench` reports BD-rates against one reference (WebP) over the whole
common quality range. This recomputes them from the file's measurements with
the bench's own curves, against any reference, e.g. the MS-SSIM model against
the MSE model:

    python results/bench/rereference.py results/bench/kodak.json --reference cdcodec

and, with --bpp-window, only over the qualities both curves reach inside a rate
window (the issue's targets are stated over 0.25-1.5 bpp):

    python results/bench/rereference.py results/bench/kodak.json --reference webp --bpp-window 0.25 1.5

--per-image adds one table per metric with each image's own BD-rates (each
image's curves alone), to see which images drive a small set's average, and
with --tally a last row counting, per codec, the images below zero (those
where it needs fewer bits than the reference). --span prints each lossy
codec's average curve's reach: its lowest and highest mean bpp (the issue asks
for 0.1 to 2 bpp) and how many settings make it.
--add FILE CODEC NAME brings one more codec in from another results file of the
same images, under NAME: e.g. a candidate MS-SSIM model measured by a bench run
of its own against the shipped one in the committed file (`cdc-msssim-7-trial.md`):

    python results/bench/rereference.py results/bench/cdc-msssim-7-kodak.json.gz --reference cdcodec-msssim-4 \\
        --add results/bench/kodak.json cdcodec-msssim cdcodec-msssim-4 --bpp-window 0.25 1.5

--pick NAME ... keeps those images only (and so, of --add's file, the same
ones): a stopped run's finished images against the committed run's points for
them (`results/codec-study/mix14-round.md`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cdcodec.bench.bdrate import bd_rate_in_window
from cdcodec.bench.codecs import LOSSY
from cdcodec.bench.curves import average_curve
from cdcodec.bench.jsonfile import read_json
from cdcodec.bench.report import envelope_axes, summarise

KEYS = ("psnr", "ssim", "ms_ssim")


def window_bd(doc: dict, reference: str, low: float, high: float, method: str) -> dict:
    """{codec: {metric: BD-rate %}} over the rate window, on the same envelopes the bench uses."""
    curves = {c["name"]: average_curve(doc["measurements"], c["name"]) for c in doc["codecs"] if c["kind"] == LOSSY}
    out = {}
    for name, points in curves.items():
        if not points or not curves.get(reference):
            continue
        out[name] = {}
        for key in KEYS:
            out[name][key] = bd_rate_in_window(*envelope_axes(curves[reference], points, key), low, high, method)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--reference", required=True, help="codec name, e.g. cdcodec")
    parser.add_argument("--bpp-window", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        help="only the qualities both curves reach between LOW and HIGH bpp")
    parser.add_argument("--per-image", action="store_true", help="also each image's own BD-rates, one table per metric")
    parser.add_argument("--tally", action="store_true", help="with --per-image: a last row counting the images below zero")
    parser.add_argument("--span", action="store_true", help="also each lossy codec's lowest and highest mean bpp")
    parser.add_argument("--add", nargs=3, action="append", default=[], metavar=("FILE", "CODEC", "NAME"),
                        help="also CODEC from another results file of the same images, named NAME here (repeatable)")
    parser.add_argument("--pick", nargs="+", metavar="NAME", help="only these images")
    args = parser.parse_args()
    if args.tally and not args.per_image:
        parser.error("--tally counts the --per-image rows: give both")
    doc = read_json(args.results)
    if args.pick:
        doc = cut_to_images(doc, args.pick)
    for path, codec, name in args.add:
        doc = with_codec_from(doc, read_json(path), codec, name)
    method, where = _method_and_window(doc, args.bpp_window)
    bd = print_bd_table(doc, args.reference, args.bpp_window)
    if args.per_image:
        images = sorted({m["image"] for m in doc["measurements"]})
        per_image = {im: bd_rates(dict(doc, measurements=[m for m in doc["measurements"] if m["image"] == im]),
                                  args.reference, args.bpp_window, method) for im in images}
        for key in KEYS:
            print(f"\nPer image, {key} BD-rate (%) against {args.reference} ({method}{where})")
            print("| image | " + " | ".join(bd) + " |\n|---|" + "---|" * len(bd))
            for im in images:
                print(f"| {im} | " + " | ".join(_cell(per_image[im].get(name, {}).get(key)) for name in bd) + " |")
            if args.tally:
                print("| below zero | " + " | ".join(_tally([per_image[im].get(name, {}).get(key) for im in images]) for name in bd) + " |")
    if args.span:
        print_spans(doc)


def cut_to_images(doc: dict, names: list[str]) -> dict:
    """`doc` with only the images `names` and their measurements (exits with a message if it lacks one)."""
    missing = set(names) - {m["image"] for m in doc["measurements"]}
    if missing:
        raise SystemExit(f"no measurements of {', '.join(sorted(missing))} in the results file")
    return dict(doc, images=[e for e in doc.get("images", []) if e["name"] in names],
                measurements=[m for m in doc["measurements"] if m["image"] in names])


def with_codec_from(doc: dict, other: dict, codec: str, name: str) -> dict:
    """`doc` with `other`'s codec `codec` added as `name`, on the images `doc` has (exits with a message if `other` lacks it)."""
    description = next((c for c in other["codecs"] if c["name"] == codec), None)
    if description is None:
        raise SystemExit(f"no codec {codec!r} in the file given with --add")
    images = {m["image"] for m in doc["measurements"]}
    added = [dict(m, codec=name) for m in other["measurements"] if m["codec"] == codec and m["image"] in images]
    return dict(doc, codecs=doc["codecs"] + [dict(description, name=name)], measurements=doc["measurements"] + added)


def print_bd_table(doc: dict, reference: str, window: tuple[float, float] | None) -> dict:
    """Print every lossy codec's BD-rates against `reference` as a markdown table; return them."""
    method, where = _method_and_window(doc, window)
    bd = bd_rates(doc, reference, window, method)
    print(f"BD-rate (%) against {reference} ({method}{where}; SSIM and MS-SSIM in dB)")
    print("| codec | PSNR | SSIM | MS-SSIM |\n|---|---|---|---|")
    for name, row in bd.items():
        print(f"| {name} | " + " | ".join(_cell(row[k]) for k in KEYS) + " |")
    return bd


def _method_and_window(doc: dict, window: tuple[float, float] | None) -> tuple[str, str]:
    """The bench's BD interpolation method, and the window as table titles print it."""
    return doc["options"].get("bd_method", "pchip"), (f", {window[0]:g}-{window[1]:g} bpp" if window else "")


def bd_rates(doc: dict, reference: str, window: tuple[float, float] | None, method: str) -> dict:
    """{codec: {metric: BD-rate %}}: over the whole common range, or only inside the bpp `window`."""
    if window:
        return window_bd(doc, reference, window[0], window[1], method)
    return summarise(doc["measurements"], doc["codecs"], reference, method)["bd_rate_percent"]


def print_spans(doc: dict) -> None:
    """Print each lossy codec's average curve's lowest and highest mean bpp and its number of settings."""
    print("\nAverage curve's reach (mean bpp over the images, per setting)")
    print("| codec | lowest bpp | highest bpp | settings |\n|---|---|---|---|")
    for codec in (c["name"] for c in doc["codecs"] if c["kind"] == LOSSY):
        points = average_curve(doc["measurements"], codec)
        if points:
            print(f"| {codec} | {points[0]['bpp']:.3f} | {points[-1]['bpp']:.3f} | {len(points)} |")


def _tally(values: list[float | None]) -> str:
    """'below zero / images with a value', e.g. '12/24'."""
    known = [v for v in values if v is not None]
    return f"{sum(v < 0 for v in known)}/{len(known)}"


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}"


if __name__ == "__main__":
    main()
