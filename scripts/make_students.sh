#!/usr/bin/env bash
# The shipped students of shapes-tiny are training seed 0 of the study (`python -m engine study`, see
# docs/results.md), so the study's table describes exactly what ships:
#   dmd2            DMD2 from the teacher (1250 steps: 250 student updates)
#   dfd             DFD post-training of dmd2 (200 steps, p = 0.5, paired inputs, detailed captions)
#   dmd2-continued  the fair control: dmd2 trained further by DMD for as many steps as dfd
# and those of the image-to-video teacher shapes-tiny-i2v are seed 0 of its study (runs/study-i2v):
#   dmd2-i2v, dfd-i2v  the same recipe from each clip's first frame (distill --task i2v)
# and the causal (streaming) students of shapes-tiny are seed 0 of the causal study (runs/study-ar):
#   dmd2-ar, dfd-ar    the same recipe for a block-causal student rolled out chunk by chunk (distill --task ar)
# The study trains whatever is missing under runs/study (each run's folder has made_by.json with its
# exact command and wall time, distill_config.json with every setting); the files a user needs are then
# copied to engine/assets/students/<name>. Checkpoints stay in runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=${STUDY:-runs/study}
STUDY_I2V=${STUDY_I2V:-runs/study-i2v}
STUDY_AR=${STUDY_AR:-runs/study-ar}

if [ ! -f "$STUDY/seed0/dfd-p0.5/made_by.json" ] || [ ! -f "$STUDY/seed0/dmd2-continued/made_by.json" ]; then
  python -m engine study --seeds 0 --variants dmd2-continued,dfd-p0.5 --out "$STUDY"
fi
if [ ! -f "$STUDY_I2V/seed0/dfd-p0.5/made_by.json" ]; then
  python -m engine study --base shapes-tiny-i2v --seeds 0 --variants dmd2-continued,dfd-p0.5 --out "$STUDY_I2V"
fi
if [ ! -f "$STUDY_AR/seed0/dfd-p0.5/made_by.json" ]; then
  python -m engine study --causal --seeds 0 --variants dmd2-continued,dfd-p0.5 --out "$STUDY_AR"
fi

ship() {  # ship NAME RUN_FOLDER
  local name=$1 src=$2 dst=engine/assets/students/$1
  rm -rf "$dst.tmp" && mkdir -p "$dst.tmp"
  cp "$src"/{pytorch_lora_weights.safetensors,comfyui_lora.safetensors,fake_score.safetensors,lora_config.json,distill_config.json,metrics.jsonl,summary.json,made_by.json} "$dst.tmp"/
  cp -r "$src/samples" "$dst.tmp/samples"
  rm -rf "$dst" && mv "$dst.tmp" "$dst"
}

ship dmd2 "$STUDY/seed0/dmd2"
ship dfd "$STUDY/seed0/dfd-p0.5"
ship dmd2-continued "$STUDY/seed0/dmd2-continued"
ship dmd2-i2v "$STUDY_I2V/seed0/dmd2"
ship dfd-i2v "$STUDY_I2V/seed0/dfd-p0.5"
ship dmd2-ar "$STUDY_AR/seed0/dmd2"
ship dfd-ar "$STUDY_AR/seed0/dfd-p0.5"
