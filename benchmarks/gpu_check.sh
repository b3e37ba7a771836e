#!/usr/bin/env bash
# The GPU check of issue #21 in one short run: skorch's overhead per epoch against a plain
# torch loop (bench_training.py) and the time to a good model against a plain PyTorch fusion
# (bench_time_to_quality.py), both on CUDA, on one synthetic cube built once, then their
# ratios, and the library's first epochs in bfloat16 mixed precision beside float32's. Sized
# to finish in under 8 minutes on one GPU; each step has its own time limit so that a slow
# step cannot take the whole budget.
#
# Run from the repository root, with the package installed:
#   bash benchmarks/gpu_check.sh                 # on the GPU machine
#   bash benchmarks/gpu_check.sh --device cpu --tiny   # to check the script itself on a CPU
# Options: --device {cuda,cpu,auto} (default cuda), --tiny (a few hundred objects, 2 epochs:
# checks that everything runs, measures nothing), --out DIR (logs; a new or empty folder;
# default a temp folder).
set -euo pipefail

device=cuda
tiny=0
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --tiny) tiny=1; shift ;;
        --out) out="$2"; shift 2 ;;
        *) echo "gpu_check.sh: unknown option $1 (use --device, --tiny, --out)" >&2; exit 2 ;;
    esac
done

if [ "$device" = cuda ] && ! python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check.sh: torch sees no CUDA device; use --device cpu to check the script" >&2
    exit 1
fi

# The logs are written into --out: a folder that already holds files (someone's, or an
# earlier check's) is refused rather than written over.
if [ -n "$out" ] && [ -e "$out" ] && { [ ! -d "$out" ] || [ -n "$(ls -A "$out")" ]; }; then
    echo "gpu_check.sh: --out $out already exists and is not an empty folder; give a new one" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="${out:-$work}"
mkdir -p "$out"
cube="$work/gpu_check.h5"

if [ "$tiny" = 1 ]; then
    objects=300; ttq_epochs=2; train_epochs=2; repeats=1; limit=600
    bf16_epochs=2; bf16_limit=600
else
    # 3,000 objects (the time-to-quality benchmark's default cube), 30 epochs at most; the
    # skorch/plain comparison with 5 epochs and 2 pairs per fusion; bfloat16 for 5 epochs.
    objects=3000; ttq_epochs=30; train_epochs=5; repeats=2; limit=200
    bf16_epochs=5; bf16_limit=60
fi
threads="$(python -c 'import os; print(len(os.sched_getaffinity(0)))')"

start=$SECONDS
echo "== building a cube of $objects FLAG=0 objects"
python -c "from sklearn_sfr.datasets import make_synthetic_cube as m; m('$cube', n_flag0=$objects)"

echo "== bench_training.py --device $device (log: $out/training.log)"
timeout "$limit" python "$here/bench_training.py" --device "$device" --cube "$cube" \
    --n-objects "$objects" --epochs "$train_epochs" --repeats "$repeats" --no-scaling \
    --threads "$threads" 2>&1 | tee "$out/training.log" || echo "bench_training.py FAILED or timed out"

echo "== bench_time_to_quality.py --device $device (log: $out/time_to_quality.log)"
timeout "$limit" python "$here/bench_time_to_quality.py" --device "$device" --cube "$cube" \
    --n-objects "$objects" --max-epochs "$ttq_epochs" --threads "$threads" 2>&1 \
    | tee "$out/time_to_quality.log" || echo "bench_time_to_quality.py FAILED or timed out"

# bfloat16 mixed precision (precision="bfloat16"): the library alone, a few epochs, whose
# per-epoch times and RMSEs compare with the float32 run's above (same cube and split).
echo "== bench_time_to_quality.py --device $device, precision bfloat16 (log: $out/bfloat16.log)"
timeout "$bf16_limit" python "$here/bench_time_to_quality.py" --device "$device" \
    --cube "$cube" --n-objects "$objects" --max-epochs "$bf16_epochs" --threads "$threads" \
    --models library --params '{"precision": "bfloat16"}' 2>&1 \
    | tee "$out/bfloat16.log" || echo "bench_time_to_quality.py (bfloat16) FAILED or timed out"

echo
echo "== ratios ($device, $((SECONDS - start)) s in all)"
grep -h -E "^worst" "$out/training.log" || echo "bench_training.py: no ratio"
grep -h -E "library / reference" "$out/time_to_quality.log" || echo "bench_time_to_quality.py: no ratio"
echo "the library's first epochs, float32 then bfloat16 (test RMSE after wall s, CPU s):"
for log in time_to_quality bfloat16; do
    echo "  $log:"
    grep -h -E "^  library epoch [1-5]:" "$out/$log.log" || echo "  (none)"
done
