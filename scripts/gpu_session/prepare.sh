#!/usr/bin/env bash
# Here (the CPU machine): fill gpu-carry/ (git-ignored) with what a lent GPU machine needs and cannot fetch.
#
# A lent machine has python3 with torch, numpy, scikit-image, safetensors, click and pillow, but no
# network and no ../shared: constriction and pytorch-msssim travel as wheels, Fashion-MNIST as xz
# (the gzip originals plus the tracked tree exceed the 64 MiB a call may carry), and the exact-decode
# check takes files encoded here. Usage, from the repository root with the venv active:
#     [FASHION=0] bash scripts/gpu_session/prepare.sh [PYTHON_VERSION]   # the lent machine's Python, default 3.12
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${1:-3.12}
carry=gpu-carry
mkdir -p $carry/wheels $carry/fashion-mnist $carry/exact
python -m pip download --quiet --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d $carry/wheels constriction==0.5.0 pytorch-msssim
# FASHION=0 leaves Fashion-MNIST out (issue 6's part of the call): the tracked tree leaves about 11 MiB
# of the 64 a call may carry (1 MiB in sessions 57-58), and the xz files are 25 MiB (README.md, "Status").
if [ "${FASHION:-1}" != 0 ]; then
    for f in ../shared/data/fashion-mnist/*-ubyte.gz; do
        out=$carry/fashion-mnist/$(basename "$f" .gz).xz
        [ -s "$out" ] || zcat "$f" | xz -9e -T1 > "$out"
    done
fi
python scripts/gpu_session/make_exact_files.py ../shared/data/kodak $carry/exact
du -sh $carry
