#!/usr/bin/env bash
# The shipped students of shapes-tiny, made by the project's own commands (settings: SHAPES_PRESET in
# engine/config.py plus the options below; each run's full config is in its distill_config.json).
#   dmd2            DMD2 from the teacher
#   dfd             DFD post-training of dmd2 (p = 0.5, paired inputs, detailed captions)
#   dmd2-continued  the fair control: dmd2 trained further by DMD for as many steps as dfd
# Runs go to runs/students/<name>; the files a user needs are copied to engine/assets/students/<name>
# with made_by.json (the command and its wall time). Checkpoints stay in runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
DMD2_STEPS=${DMD2_STEPS:-1250}  # steps count updates: 1 in 5 moves the student
POST_STEPS=${POST_STEPS:-200}

ship() {  # ship NAME SECONDS COMMAND...
  local name=$1 seconds=$2; shift 2
  local src=runs/students/$name dst=engine/assets/students/$name
  rm -rf "$dst.tmp" && mkdir -p "$dst.tmp"
  cp "$src"/{pytorch_lora_weights.safetensors,comfyui_lora.safetensors,fake_score.safetensors,lora_config.json,distill_config.json,metrics.jsonl,summary.json} "$dst.tmp"/
  cp -r "$src/samples" "$dst.tmp/samples"
  python - "$dst.tmp/made_by.json" "$seconds" "$@" <<'PY'
import json, shlex, sys
path, seconds, *cmd = sys.argv[1:]
json.dump({"made_by": " ".join(shlex.quote(c) for c in cmd), "wall_seconds": float(seconds),
           "note": "made by scripts/make_students.sh on a 2-core CPU"}, open(path, "w"), indent=2)
PY
  rm -rf "$dst" && mv "$dst.tmp" "$dst"
}

run() {  # run NAME COMMAND...: time the command, then ship its output
  local name=$1; shift
  rm -rf "runs/students/$name"
  local start=$(date +%s.%N)
  "$@"
  local end=$(date +%s.%N)
  ship "$name" "$(python -c "print(round($end - $start, 1))")" "$@"
}

run dmd2 python -m engine distill --method dmd2 --base shapes-tiny --data shapes --steps "$DMD2_STEPS" --seed 0 \
  --out runs/students/dmd2
run dfd python -m engine distill --method dfd --init runs/students/dmd2 --base shapes-tiny --data shapes \
  --steps "$POST_STEPS" --data-forcing-prob 0.5 --seed 0 --out runs/students/dfd
run dmd2-continued python -m engine distill --method dmd2 --init runs/students/dmd2 --base shapes-tiny --data shapes \
  --steps "$POST_STEPS" --seed 0 --out runs/students/dmd2-continued
