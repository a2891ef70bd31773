#!/usr/bin/env bash
# Rebuild every shipped asset with the project's own commands, in order. Each asset also records the
# exact command that made it (dfd_studio.json, recognizer.json, made_by.json) and its settings.
# On this 2-core CPU, run alone: teacher ~50 min + ~20 min, recognizer ~10 min, students and the
# 3-seed study ~35 min.
set -euo pipefail
cd "$(dirname "$0")/.."
# The teacher: 10k steps (cosine rate), then 4k more at a constant 3e-4 from those weights. The shipped
# one is the 4000-step save of a 15000-step constant-rate run (its dfd_studio.json: trained_steps 4000),
# which is what `--steps 4000` writes: the rate does not depend on --steps when it is constant.
python -m engine pretrain-teacher --out engine/assets/shapes-tiny --steps 10000 --seed 0 --save-every 1000
python -m engine pretrain-teacher --init engine/assets/shapes-tiny --out runs/teacher-continued --steps 4000 --seed 1 \
  --lr 3e-4 --lr-schedule constant --warmup-steps 200 --save-every 500
rm -rf engine/assets/shapes-tiny && cp -r runs/teacher-continued engine/assets/shapes-tiny
python -m engine train-recognizer --out engine/assets/shapes-recognizer --steps 1500 --seed 0
bash scripts/make_students.sh
python -m engine study --seeds 0-2 --out runs/study --json docs/results/study.json --md docs/results/study.md \
  --plot docs/results/study.png
