#!/usr/bin/env bash
# The checks that need a GPU, in a few minutes, wherever one is available. Never part of `make test`.
#
#   scripts/gpu_check.sh                 # on a machine with CUDA GPUs (PyTorch built with CUDA)
#   scripts/gpu_check.sh --device cpu    # the same steps on the CPU: checks this script itself
#
# Steps (each under its own time limit; a failed step is reported and the rest still run):
#   1. the machine: GPUs, torch / JAX builds and their devices
#   2. the distributed tests (tests/test_distributed.py: gloo on CPU, JAX on 2 virtual devices)
#   3. data-parallel equivalence on CUDA: one process vs --nproc N (N = GPUs, at most 4; NCCL) on a tiny
#      model, per-step losses and final weights within the ("float32", "data_parallel") tolerance row
#      (needs >= 2 GPUs: NCCL takes one GPU per process)
#   4. the conformance suite on torch:cuda (dev profile), and on JAX when JAX sees a GPU
#   5. generation speed on torch:cuda (benchmarks/bench_generate.py, the default model and GPT-2 small)
#   6. training throughput, 1 vs N processes on CUDA (benchmarks/bench_data_parallel.py; needs >= 2 GPUs)
# Results (JSON reports, logs, a summary) go to $OUT (default: gpu_check_out/). Exit status: the number of
# failed steps (0: all passed); 3 at once when PyTorch has no CUDA here.
set -u
cd "$(dirname "$0")/.."
DEVICE=cuda
if [ "${1:-}" = "--device" ]; then DEVICE="${2:?--device cpu|cuda}"; fi
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
FAILED=0
STARTED=$(date +%s)

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.log, record the verdict
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  echo "== $name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local status=$?
  tail -n 15 "$OUT/$name.log"
  local verdict="passed"
  if [ $status -eq 124 ] || [ $status -eq 137 ]; then verdict="TIMED OUT"; elif [ $status -ne 0 ]; then verdict="FAILED ($status)"; fi
  [ "$verdict" = "passed" ] || FAILED=$((FAILED + 1))
  printf '%-28s %-12s %4ss\n' "$name" "$verdict" "$(( $(date +%s) - t0 ))" | tee -a "$SUMMARY"
}

skip() { printf '%-28s %-12s %s\n' "$1" "skipped" "$2" | tee -a "$SUMMARY"; }

# 1. the machine
{ nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not found"; } | tee "$OUT/machine.txt"
"$PY" - <<'EOF' | tee -a "$OUT/machine.txt"
import torch
print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, cuda available {torch.cuda.is_available()}, "
      f"{torch.cuda.device_count()} GPU(s)" + (f": {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
try:
    import jax
    print(f"jax {jax.__version__}: {jax.devices()}")
except Exception as error:  # JAX is optional
    print(f"jax: not usable ({type(error).__name__}: {error})")
EOF
if [ "$DEVICE" = cuda ]; then
  GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
  if [ "$GPUS" -eq 0 ]; then
    echo "PyTorch here has no CUDA device (see above): install a CUDA build of torch, or run with --device cpu" | tee -a "$SUMMARY"
    exit 3
  fi
  BACKEND=torch:cuda
  NPROC=$(( GPUS < 4 ? GPUS : 4 ))
else
  BACKEND=torch
  NPROC=2
fi

# 2. the distributed tests (CPU: gloo, JAX virtual devices)
step distributed_tests 300 "$PY" -m pytest -q -x -p no:cacheprovider tests/test_distributed.py

# 3. data-parallel equivalence on this device
if [ "$NPROC" -ge 2 ]; then
  TINY=(train --preset smoke --documents 60 --d-model 64 --n-layers 2 --n-heads 4 --d-ff 128 --model-context 32
        --context-length 32 --batch-size $((4 * NPROC)) --steps 6 --threads 1 --quiet --backend "$BACKEND")
  rm -rf "$OUT/dp_one" "$OUT/dp_many"
  step dp_one_process 300 "$PY" -m transformer_spec "${TINY[@]}" --out "$OUT/dp_one"
  step "dp_${NPROC}_processes" 300 "$PY" -m transformer_spec "${TINY[@]}" --out "$OUT/dp_many" --nproc "$NPROC"
  step dp_equivalence 60 "$PY" - "$OUT/dp_one" "$OUT/dp_many" <<'EOF'
import json, sys
from pathlib import Path
import numpy as np
from safetensors.numpy import load_file
from transformer_spec.spec.tolerances import tolerance
tol = tolerance("float32", "data_parallel")
one, many = (Path(p) for p in sys.argv[1:3])
def excess(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want) - (tol.atol + tol.rtol * np.abs(want))))
losses = [json.loads((p / "trainer_state.json").read_text())["losses"] for p in (one, many)]
weights = [load_file(str(p / "model.safetensors")) for p in (one, many)]
worst_loss = excess(losses[1], losses[0])
worst_weight = max(excess(weights[1][n], weights[0][n]) for n in weights[0])
gap = max(float(np.abs(weights[1][n].astype(np.float64) - weights[0][n]).max()) for n in weights[0])
print(f"losses {losses[0]} vs {losses[1]}")
print(f"largest weight difference {gap:.3g}; tolerance row atol {tol.atol:g} rtol {tol.rtol:g}")
sys.exit(0 if worst_loss <= 0 and worst_weight <= 0 else 1)
EOF
else
  skip dp_equivalence "needs >= 2 GPUs (NCCL: one GPU per process); this machine has ${GPUS:-0}"
fi

# 4. conformance
step "conformance_${BACKEND/:/_}" 420 "$PY" -m transformer_spec conformance --backend "$BACKEND" --profile dev --quiet \
  --timeout 120 --report "$OUT/conformance_${BACKEND/:/_}.json"
if [ "$DEVICE" = cuda ] && "$PY" -c "import jax, sys; sys.exit(0 if any(d.platform == 'gpu' for d in jax.devices()) else 1)" 2>/dev/null; then
  step conformance_jax_gpu 420 "$PY" -m transformer_spec conformance --backend jax:gpu --profile dev --quiet --timeout 120 \
    --report "$OUT/conformance_jax_gpu.json"
else
  skip conformance_jax_gpu "JAX sees no GPU here"
fi

# 5. generation speed
step generation_speed 420 "$PY" -m benchmarks.bench_generate --backends "$BACKEND" --no-hf --models default,gpt2 \
  --repeats 3 --out "$OUT/generate_${BACKEND/:/_}.json"

# 6. training throughput, 1 vs N processes
if [ "$NPROC" -ge 2 ]; then
  step train_throughput 420 "$PY" -m benchmarks.bench_data_parallel --backend "$BACKEND" --nproc "$NPROC" --steps 30 \
    --rounds 2 --out "$OUT/data_parallel_${BACKEND/:/_}.json"
else
  skip train_throughput "needs >= 2 GPUs"
fi

echo "== summary ($(( $(date +%s) - STARTED )) s; results in $OUT/)"
cat "$SUMMARY"
exit "$FAILED"
