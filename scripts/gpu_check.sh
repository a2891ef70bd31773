#!/usr/bin/env bash
# The GPU check of docs/performance.md ("GPU"), one script, on one H100/H200, alone, in under 8 minutes:
#  1. a folder of generated clips (moving colour bars, 832x480, 16 fps, 6 s, a caption file each);
#  2. 20 DMD2 steps, then 10 DFD steps from that student, of Wan2.1-T2V-1.3B's config with random weights
#     (`wan2.1-1.3b-random`) at 81x480x832, batch 1, gradient checkpointing, trained from that folder through
#     the engine's own data path: step times, MFU and peak memory of each run;
#  3. the bench figures of the performance targets: MFU of the student and fake-score updates (>= 40%) and
#     the DFD peak (<= 22 GB) from `engine bench train-step`, 4-step sampling end to end (<= 5 s) from
#     `engine bench sampling`;
#  4. the train step of the other two settings at that size: image-to-video (`wan2.1-1.3b-i2v-random`, the 1.3B
#     widened to take the first frame) and the causal student's rollout (`--task ar`), from `engine bench train-step`.
#  4b. Wan2.2-TI2V-5B's train step at its own size (`wan2.2-ti2v-5b-random`: its transformer and VAE configs from
#     wan/configs/wan_ti2v_5B.py and wan/modules/vae2_2.py of github.com/Wan-Video/Wan2.2, random weights,
#     121x704x1280, image-to-video by frame replacement), from `engine bench train-step` (GPU only).
#  5. the memory plan (`engine plan`, on fake tensors) of the fake-score update, the DFD student update and
#     sampling against the same stages measured on the GPU (torch.cuda.max_memory_allocated): plan_check.json,
#     one line per stage in the summary (on the dry run: planned only, at 5x64x64).
#  5b. block swap: the DFD student update with 20 of the 1.3B's 30 blocks swapped, planned against measured
#     (peak, seconds, bytes copied in): plan_check_block_swap.json.
#  5c. the int8 frozen base: the fake-score and DFD student updates planned against measured, with their
#     seconds (torchao's int8 matmul against plan_check.json's bf16): plan_check_int8.json.
#  6. Cosmos-Predict2.5-2B's transformer (random weights) at 93x704x1280 from a first frame through the engine's
#     velocity() and LoRA: teacher forward and one LoRA update, timed, peak memory (scripts/gpu_check_cosmos.py).
# Each stage runs only while the time budget (GPU_CHECK_BUDGET_S, default 470 s) has room for it, under a
# timeout of what is left. A sharded (FSDP) run needs two processes on two GPUs, so it is not part of a
# one-GPU check: tests/test_multiprocess.py runs it on CPUs.
# Everything goes to $OUT (the device tool's folder; docs/results/gpu_check otherwise): train_dmd2.json,
# train_dfd.json, bench_train_step.json, bench_sampling.json, bench_train_step_{i2v,ar,ti2v_5b}.json, gpu_check.json (all of it, each target with
# its verdict), gpu_check.log; the summary is printed at the end.
#
#   bash scripts/gpu_check.sh --dry-run   # the same stages on CPU at shapes-tiny sizes (~2 min): a check of the script
#
# Wan2.2-A14B, a run of its own (`bash scripts/gpu_check.sh --a14b`, with --dry-run too): both experts at
# 14B's real width and 4 of their 40 blocks each (random weights), DMD2 for 4 steps at 81x480x832, batch 1,
# gradient checkpointing, through the engine's trainer: train_a14b.json. Both whole experts (57 GB of bf16
# weights) would fit the H200 but their updates (~40 s each by docs/distillation.md's estimate) and the
# random initialisation of 28.6 B parameters would not fit the time budget; a block's time and memory
# times 10 give the whole experts' (the weights' share exactly; activations per checkpointed block).
#
# Wheels: on a GPU image with torch, transformers, accelerate and huggingface_hub but not diffusers, peft,
# imageio-ffmpeg (this check writes and reads mp4s) or importlib_metadata, download them here first (~40 MB)
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl diffusers==0.42.1 peft==0.21.2 imageio-ffmpeg importlib_metadata zipp
# then run it with `carry: [".whl"]` and the command `bash scripts/gpu_check.sh` (timeout_s 560).
set -uo pipefail
cd "$(dirname "$0")/.."
dry=0
a14b=0
for arg in "$@"; do
  [ "$arg" = "--dry-run" ] && dry=1
  [ "$arg" = "--a14b" ] && a14b=1
done
out=${OUT:-docs/results/gpu_check}
[ $dry = 1 ] && out=${OUT:-/tmp/gpu_check_dry}
mkdir -p "$out"
budget=${GPU_CHECK_BUDGET_S:-470}
started=$(date +%s)
log="$out/gpu_check.log"
: > "$log"
stages="$out/stages.json"
echo "[]" > "$stages"

if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || exit 1
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
python3 - "$dry" <<'EOF' 2>&1 | tee -a "$log" || exit 1
import sys
import torch
if sys.argv[1] == "0" and not torch.cuda.is_available():
    sys.exit("no CUDA device: this script measures the GPU figures; `bash scripts/gpu_check.sh --dry-run` checks it on CPU")
import diffusers, imageio_ffmpeg, peft
print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (dry run)", "torch", torch.__version__,
      "cuda", torch.version.cuda, "diffusers", diffusers.__version__, "peft", peft.__version__)
EOF
[ ${PIPESTATUS[0]} = 0 ] || exit 1

if [ $dry = 1 ]; then  # shapes-tiny: 17 frames of 64x64 at 8 fps
  base=shapes-tiny; i2v_base=shapes-tiny-i2v; clips=(--n 4 --seconds 3 --fps 8 --height 64 --width 96); size=()
  dmd2_steps=4; dfd_steps=2; freq=(--student-update-freq 2); sampling=(--videos 1 --rounds 1)
else
  base=wan2.1-1.3b-random; i2v_base=wan2.1-1.3b-i2v-random; clips=(--n 4 --seconds 6 --fps 16 --height 480 --width 832)
  size=(--num-frames 81 --height 480 --width 832); dmd2_steps=20; dfd_steps=10; freq=(); sampling=(--videos 1 --rounds 1)
fi

# stage NAME MIN_SECONDS COMMAND...: run it under a timeout of the budget left, if at least MIN_SECONDS are left.
stage() {
  local name=$1 need=$2; shift 2
  local left=$((budget - ($(date +%s) - started)))
  if [ "$left" -lt "$need" ]; then
    echo "== $name: skipped, ${left}s of the budget left (needs ${need}s)" | tee -a "$log"
    python3 -c "import json,sys; p=sys.argv[1]; s=json.load(open(p)); s.append({'stage': sys.argv[2], 'skipped': True, 'left_s': int(sys.argv[3])}); json.dump(s, open(p, 'w'), indent=1)" "$stages" "$name" "$left"
    return 1
  fi
  echo "== $name (${left}s left)" | tee -a "$log"
  local t0=$(date +%s)
  timeout "$left" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  python3 -c "import json,sys; p=sys.argv[1]; s=json.load(open(p)); s.append({'stage': sys.argv[2], 'rc': int(sys.argv[3]), 'seconds': int(sys.argv[4])}); json.dump(s, open(p, 'w'), indent=1)" "$stages" "$name" "$rc" "$(($(date +%s) - t0))"
  echo "== $name: exit $rc after $(($(date +%s) - t0))s" | tee -a "$log"
  return "$rc"
}

[ $dry = 1 ] || nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$log"
if [ $a14b = 1 ]; then  # Wan2.2-A14B's two experts, a few blocks each (the comment at the top says why)
  if [ $dry = 1 ]; then blocks=1; a14b_size=(--num-frames 17 --height 64 --width 64); else blocks=4; a14b_size=("${size[@]}"); fi
  rm -rf "$out/clips" "$out/a14b"
  stage clips 20 python3 scripts/gpu_check.py clips "$out/clips" "${clips[@]}"
  stage train-a14b 120 python3 scripts/gpu_check.py train --base wan2.2-a14b-random --experts-blocks $blocks \
    --data "$out/clips" --method dmd2 --steps 4 --student-update-freq 2 "${a14b_size[@]}" --gradient-checkpointing \
    --out "$out/a14b" --json "$out/train_a14b.json"
  rm -rf "$out/clips" "$out/a14b/checkpoints"
  find "$out" -name "*.safetensors" -delete
  echo "total $(($(date +%s) - started))s" | tee -a "$log"
  exit 0
fi
rm -rf "$out/clips" "$out/dmd2" "$out/dfd"
stage clips 20 python3 scripts/gpu_check.py clips "$out/clips" "${clips[@]}"
stage train-dmd2 90 python3 scripts/gpu_check.py train --base $base --data "$out/clips" --method dmd2 \
  --steps $dmd2_steps "${freq[@]}" "${size[@]}" --gradient-checkpointing --out "$out/dmd2" --json "$out/train_dmd2.json" \
  && stage train-dfd 60 python3 scripts/gpu_check.py train --base $base --data "$out/clips" --method dfd \
  --init "$out/dmd2" --steps $dfd_steps "${freq[@]}" "${size[@]}" --gradient-checkpointing --out "$out/dfd" \
  --json "$out/train_dfd.json"
stage bench-train-step 60 python3 -m engine bench train-step --base $base --batch-size 1 --gradient-checkpointing \
  --json "$out/bench_train_step.json"
stage bench-sampling 90 python3 -m engine bench sampling --base $base "${sampling[@]}" --json "$out/bench_sampling.json"
# the other two settings' train steps, at the same size: image-to-video (the 1.3B widened to take the first frame)
# and the causal student's chunk-by-chunk rollout
stage bench-train-step-i2v 60 python3 -m engine bench train-step --base $i2v_base --task i2v --batch-size 1 \
  --gradient-checkpointing --json "$out/bench_train_step_i2v.json"
stage bench-train-step-ar 60 python3 -m engine bench train-step --base $base --task ar --batch-size 1 \
  --gradient-checkpointing --json "$out/bench_train_step_ar.json"
# Wan2.2-TI2V-5B at its published size, one base for t2v and i2v: the i2v step (the given frame replaces the
# first latent frame at timestep 0). Too large for the CPU dry run.
[ $dry = 1 ] || stage bench-train-step-ti2v-5b 120 python3 -m engine bench train-step --base wan2.2-ti2v-5b-random \
  --task i2v --batch-size 1 --gradient-checkpointing --num-frames 121 --height 704 --width 1280 \
  --json "$out/bench_train_step_ti2v_5b.json"
# the memory plan (engine.plan, on fake tensors) against the same stages measured here; plan_check.json
if [ $dry = 1 ]; then plan_size=(--frames 5 --height 64 --width 64); else plan_size=(--frames 81 --height 480 --width 832); fi
stage plan-check 150 python3 scripts/gpu_check.py plan-check --base wan2.1-1.3b-random "${plan_size[@]}" \
  --json "$out/plan_check.json"
# Cosmos-Predict2.5-2B's transformer at 93x704x1280 from a first frame (random weights, diffusers' conversion
# config): the teacher's forward and one LoRA update, timed, with peak memory; cosmos_check.json
stage cosmos-2b 90 python3 scripts/gpu_check_cosmos.py $([ $dry = 1 ] && echo --dry-run) --json "$out/cosmos_check.json"
# block swap (DistillConfig.block_swap): the DFD student update at that size with the last 20 of the 30 blocks'
# frozen weights on the host, planned and measured: peak, seconds and bytes copied in (the GPU's own, not the
# link's nominal rate); plan_check_block_swap.json, beside the same stage without it in plan_check.json
stage plan-check-block-swap 60 python3 scripts/gpu_check.py plan-check --base wan2.1-1.3b-random "${plan_size[@]}" \
  --block-swap $([ $dry = 1 ] && echo 1 || echo 20) --stages student_update_dfd --json "$out/plan_check_block_swap.json"
# the int8 frozen base (DistillConfig.base_int8): the fake-score and DFD student updates at that size, planned
# and measured, with their seconds beside plan_check.json's bf16 ones: torchao's int8 matmul speed on a GPU;
# plan_check_int8.json
stage plan-check-int8 60 python3 scripts/gpu_check.py plan-check --base wan2.1-1.3b-random "${plan_size[@]}" \
  --base-int8 --stages fake_update,student_update_dfd --json "$out/plan_check_int8.json"
echo "== FSDP: skipped, a sharded base needs two processes on two GPUs (tests/test_multiprocess.py runs it on CPUs)" \
  | tee -a "$log"
# Keep $OUT small (the device tool brings it back): the figures, configs and metrics, not the clips,
# checkpoints or LoRA files (~175 MB each at rank 32 on the 1.3B model).
rm -rf "$out/clips" "$out/dmd2/checkpoints" "$out/dfd/checkpoints"
find "$out" -name "*.safetensors" -delete
python3 scripts/gpu_check.py summary "$out" 2>&1 | tee -a "$log"
echo "total $(($(date +%s) - started))s" | tee -a "$log"
