#!/usr/bin/env bash
# The GPU measurements of issue 14 in one short window, written to benchmarks/results/gpu.json:
#   1. paper-sized learning (configs/learn.py: hidden 256, 10,000 steps) wall time,
#   2. fitting seconds per frame (configs/fit.py, AIM, the 100-frame synthetic sequence, and
#      configs/fit_fast.py: a short batch fit finished frame by frame in closed form),
#   3. live-tracking latency per frame (configs/track.py) and its error beside the batch fit.
# It installs nothing beyond the package's cuda12 extra (skipped when PYTHON names an
# interpreter that already has it). QUICK=1 runs tiny step counts (a smoke test, any machine).
#
#   bash benchmarks/gpu.sh                 # makes .venv-gpu with pip install -e '.[cuda12]'
#   PYTHON=.venv/bin/python QUICK=1 bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-workdirs/gpu_bench}
OUT=${OUT:-benchmarks/results/gpu.json}
if [[ -z "${PYTHON:-}" ]]; then
  python3 -m venv .venv-gpu
  .venv-gpu/bin/pip install -q -e '.[cuda12]'
  PYTHON=.venv-gpu/bin/python
fi
LEARN_STEPS=10000; FIT_STEPS=3000; FAST_STEPS=800
if [[ "${QUICK:-0}" == "1" ]]; then LEARN_STEPS=200; FIT_STEPS=100; FAST_STEPS=50; fi
rm -rf "$WORK"; mkdir -p "$WORK"
"$PYTHON" -c "import jax; print('devices:', jax.devices())"
start=$SECONDS
"$PYTHON" experiments/learn_model.py --config=configs/learn.py --workdir="$WORK/learn" \
    --config.train.num_steps=$LEARN_STEPS --config.output.render=False | tail -3
learn_s=$((SECONDS - start))
"$PYTHON" experiments/fit_sequence.py --model_dir="$WORK/learn" --targets=synthetic \
    --config.methods=aim --config.train.num_steps=$FIT_STEPS --config.output.render=False \
    --config.output.meshes=False --workdir="$WORK/fit" | tail -3
"$PYTHON" experiments/fit_sequence.py --model_dir="$WORK/learn" --targets=synthetic \
    --config=configs/fit_fast.py --config.methods=aim --config.train.num_steps=$FAST_STEPS \
    --config.output.render=False --config.output.meshes=False --workdir="$WORK/fit_fast" | tail -3
"$PYTHON" experiments/track.py --model_dir="$WORK/learn" --targets=synthetic \
    --config.train.num_steps=$FIT_STEPS --batch_fit="$WORK/fit" --workdir="$WORK/track" | tail -2
"$PYTHON" benchmarks/gpu_summary.py --work="$WORK" --learn_seconds="$learn_s" \
    --learn_steps=$LEARN_STEPS --out="$OUT"
