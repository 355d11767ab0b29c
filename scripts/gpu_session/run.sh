#!/usr/bin/env bash
# There (a lent GPU machine, from the repository root, gpu-carry/ carried along): the checks and
# runs that need a GPU, in one call, each result written to $OUT as soon as it exists.
#
#   1. issue 4: decode the exact files encoded on the CPU machine; pixels must match bit for bit
#   2. issue 3: training throughput (the `cascade3` layout) on CUDA, bfloat16 autocast then float32
#   3. issue 6: Fashion-MNIST with the paper's 100 epochs, 3 seeds, the paper's ten algorithms,
#      as parallel parts (`cdcodec experiment cascade-parts --device cuda`), stopped at the deadline
#
# The machine has python3 with torch but not this package: it runs from the working tree through a
# small PYTHONPATH shim (src/cdcodec plus links to the layer folders, as pyproject maps them).
# Environment: OUT (results folder, required), TRAIN_BUDGET (seconds from the start until the parts
# are stopped, default 500), JOBS (parts at once, default 15), EPOCHS (default 100), SEEDS (default 3);
# for a dry run on a CPU machine: DEVICE=cpu NO_INSTALL=1 EPOCHS=1 SEEDS=1.
set -u
: "${OUT:?set OUT to the folder the results go to}"
EPOCHS=${EPOCHS:-100} SEEDS=${SEEDS:-3} DEVICE=${DEVICE:-cuda}
START=$(date +%s)
DEADLINE=$((START + ${TRAIN_BUDGET:-500}))
exec > >(tee "$OUT/log.txt") 2>&1
stamp() { echo "[$(( $(date +%s) - START )) s] $*"; }

[ -n "${NO_INSTALL:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site gpu-carry/wheels/*.whl || exit 1
mkdir -p /tmp/pkg/cdcodec && cp src/cdcodec/*.py /tmp/pkg/cdcodec/
for d in bitstream codec cli trained bench experiments; do ln -sfn "$PWD/$d" /tmp/pkg/cdcodec/$d; done
export PYTHONPATH=/tmp/pkg:/tmp/site:$PWD/tests PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
{ nvidia-smi; nproc; python3 -c "import torch, numpy, skimage; print('torch', torch.__version__, 'numpy', numpy.__version__, 'skimage', skimage.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"; } > "$OUT/env.txt" 2>&1
tail -n 2 "$OUT/env.txt"

stamp "1. exact decode of files made on the CPU machine"
timeout 90 python3 scripts/gpu_session/check_exact_files.py gpu-carry/exact "$OUT/exact-device.json" | tail -n 2
stamp "2. training throughput on $DEVICE"
timeout 150 python3 scripts/train_throughput.py --device "$DEVICE" --steps 50 --warmup 10 --out "$OUT/throughput-$DEVICE.json" | grep -E "step_ms|steps_per_second"
# the same in float32, to show what bfloat16 autocast buys there (on CPU: results/training/README.md)
timeout 150 python3 scripts/train_throughput.py --device "$DEVICE" --precision fp32 --steps 50 --warmup 10 --out "$OUT/throughput-$DEVICE-fp32.json" | grep -E "step_ms|steps_per_second"

if ! ls gpu-carry/fashion-mnist/*.xz > /dev/null 2>&1; then
    stamp "3. skipped: no Fashion-MNIST in gpu-carry (prepared with FASHION=0)"
    stamp "done"
    exit 0
fi
stamp "3. Fashion-MNIST, $EPOCHS epochs, in parts"
mkdir -p /tmp/data/fashion-mnist /tmp/parts /tmp/cache
for f in gpu-carry/fashion-mnist/*.xz; do xz -dc "$f" | gzip -1 > /tmp/data/fashion-mnist/$(basename "$f" .xz).gz; done
# Many small processes share the GPU far better through MPS (one context, kernels side by side);
# without it they time-slice. Fall back quietly where the daemon will not start.
export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
mkdir -p /tmp/mps-pipe /tmp/mps-log
if [ "$DEVICE" = cuda ] && nvidia-cuda-mps-control -d && timeout 40 python3 -c "import torch; (torch.ones(4, device='cuda') * 2).sum().item()"; then
    stamp "MPS on"
else
    echo quit | nvidia-cuda-mps-control 2>/dev/null
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    stamp "MPS off"
fi
pids=()
(timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_exact.py > /tmp/parts/pytest-exact.log 2>&1; stamp "tests/test_exact.py exit $?") &
pids+=($!)
timeout $(( DEADLINE - $(date +%s) > 1 ? DEADLINE - $(date +%s) : 1 )) python3 -m cdcodec experiment cascade-parts \
    --dataset fashion-mnist --data-dir /tmp/data --epochs "$EPOCHS" --seeds "$SEEDS" --device "$DEVICE" --threads 1 \
    --cache-dir /tmp/cache --jobs "${JOBS:-15}" --out /tmp/parts/fashion-mnist &
pids+=($!)
wait "${pids[@]}"  # not a bare `wait`: that would also wait for the tee above
stamp "parts stopped or finished"
# Where unfinished stages stood, to size the next call.
python3 - > /tmp/parts/progress.txt 2>&1 <<'PY'
from pathlib import Path
from cdcodec.experiments.state_file import load_state
for path in sorted(Path("/tmp/cache").rglob("*.safetensors")):
    state = load_state(path) or {}
    print(path.relative_to("/tmp/cache"), "epoch", state.get("epoch"), "seconds", state.get("seconds", state.get("train_seconds")))
PY
tail -n 3 /tmp/parts/pytest-exact.log
tar czf "$OUT/parts.tgz" -C /tmp parts
stamp "done"
