#!/usr/bin/env bash
# The GPU figures of docs/performance.md ("GPU") in one run, on one H100/H200, alone (~8-10 min with
# Wan2.1-T2V-1.3B's config and random weights at 81x480x832, batch 1): MFU and peak memory of the student
# and fake-score updates with and without gradient checkpointing, and 4-step sampling end to end against
# the 50-step CFG teacher. Writes JSON and a log into $OUT (the device tool's folder) or docs/results/.
#
# On a GPU image that has torch, transformers, accelerate and huggingface_hub but not diffusers, peft or
# importlib_metadata (the benchmarks write no video, so they need no imageio-ffmpeg), download those wheels
# here first (7 MB)
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl diffusers==0.42.1 peft==0.21.2 importlib_metadata zipp
# then run it with `carry: [".whl"]` and the command `bash scripts/bench_gpu.sh` (timeout_s 600). If the
# image's transformers is too old for UMT5, carry that wheel too.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-docs/results}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || exit 1
fi
python3 - <<'EOF' || exit 1
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("no CUDA device: this script measures the GPU figures; on a CPU use `python -m engine bench ...`")
import diffusers, peft
print("gpu", torch.cuda.get_device_name(0), "torch", torch.__version__, "cuda", torch.version.cuda,
      "diffusers", diffusers.__version__, "peft", peft.__version__)
EOF
export PYTHONUNBUFFERED=1
wan=(--base wan2.1-1.3b-random)
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  # The two targets first (MFU >= 40%, DFD peak <= 22 GB; 4-step sampling <= 5 s), then the speed-vs-memory pair.
  timeout 240 python3 -m engine bench train-step "${wan[@]}" --batch-size 1 --gradient-checkpointing \
    --json "$out/bench_train_step_gpu.json"
  timeout 300 python3 -m engine bench sampling "${wan[@]}" --videos 1 --rounds 1 --json "$out/bench_sampling_gpu.json"
  timeout 240 python3 -m engine bench train-step "${wan[@]}" --batch-size 1 --json "$out/bench_train_step_gpu_nockpt.json"
} 2>&1 | tee "$out/bench_gpu.log"
