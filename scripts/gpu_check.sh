#!/usr/bin/env bash
# On a machine with a CUDA device: (1) the GPU tests (pytest -m gpu) and the fake-CUDA tests,
# (2) every chapter in full mode, timed, into docs/chapter_times_gpu.md, (3) the stored benchmark
# regenerated with --device cuda (the commands of docs/benchmark/README.md).  Fails at once, with
# "no CUDA device", anywhere else.
#
#   scripts/gpu_check.sh            # all three steps
#   STEPS="tests" scripts/gpu_check.sh            # only some: tests, chapters, benchmark
#   GPU_BENCH_OUT=runs/gpu_bench scripts/gpu_check.sh   # benchmark elsewhere than docs/benchmark
#
# The chapters run on `DEVICE = pt.default_device()` (CUDA here); the table records the device
# torch saw next to each time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python}"

if ! "$PY" - <<'EOF'
import sys
try:
    import torch
except ImportError:
    print("no CUDA device: torch is not importable here", file=sys.stderr); sys.exit(1)
if not torch.cuda.is_available():
    print("no CUDA device: torch.cuda.is_available() is False (torch "
          f"{torch.__version__}, built for CUDA {torch.version.cuda}); this script needs a GPU.",
          file=sys.stderr)
    sys.exit(1)
print(f"CUDA device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
EOF
then
  echo "gpu_check.sh: no CUDA device, nothing run." >&2
  exit 1
fi

export MPLBACKEND=Agg
if [ -z "${POSTERIOR_TUTOR_DATA:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  export POSTERIOR_TUTOR_DATA="$ROOT/../shared/data"
fi
STEPS="${STEPS:-tests chapters benchmark}"
OUT="${GPU_BENCH_OUT:-docs/benchmark}"

if [[ " $STEPS " == *" tests "* ]]; then
  echo "== GPU tests and fake-CUDA tests"
  POSTERIOR_TUTOR_FAST=1 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests
  POSTERIOR_TUTOR_FAST=1 "$PY" -m pytest -q -p no:cacheprovider tests/core/test_fake_cuda.py
fi

if [[ " $STEPS " == *" chapters "* ]]; then
  echo "== every chapter in full mode, timed, on the GPU (pt.default_device() picks CUDA)"
  "$PY" scripts/chapter_times.py --modes full --out docs/chapter_times_gpu.md
fi

if [[ " $STEPS " == *" benchmark "* ]]; then
  echo "== the stored benchmark with --device cuda, into $OUT"
  unset POSTERIOR_TUTOR_FAST CI
  B=("$PY" -m posterior_tutor.evaluation.bench --device cuda)
  "${B[@]}" --suite toy --out "$OUT"
  "${B[@]}" --suite images --images 3 --samples 4 --out "$OUT"
  "${B[@]}" --suite images --methods dps --tasks gaussian_deblur sr4 random_inpainting \
    --images 8 --samples 4 --memory inline --out "$OUT/peer/dps"
  "${B[@]}" --suite images --methods diffpir --tasks gaussian_deblur sr4 random_inpainting \
    --images 16 --samples 16 --memory inline --out "$OUT/peer/diffpir"
  for task in random_inpainting sr4; do
    "${B[@]}" --suite images --methods dps ud2m --tasks "$task" --images 4 --samples 32 \
      --no-peer --memory inline --out "$OUT/ud2m_vs_dps/$task"
  done
  echo "benchmark written to $OUT (git diff shows what the GPU changed)"
fi
echo "gpu_check.sh: done"
