#!/usr/bin/env bash
# Rebuild every shipped asset with the project's own commands, in order. Each asset also records the
# exact command that made it (dfd_studio.json, recognizer.json, made_by.json) and its settings.
# On this 2-core CPU, run alone: teacher ~95 + ~28 + ~15 + ~17 + ~29 min, recognizer ~10 min, students
# and the 3-seed study ~40 min.
set -euo pipefail
cd "$(dirname "$0")/.."
# The teacher, in five stages. Stages 1 and 2 ran on the world as it was before the object-size change
# (objects of radius 8-13 px, speed 0.9-1.8 px/frame: git commit 2531578), so they run from a checkout
# of that commit: 10k steps (cosine rate), then 4k more at a constant 3e-4 (the shipped 4000-step save of
# a 15000-step constant-rate run is what `--steps 4000` writes). Stage 3 continues those weights on
# today's world (radius 13-18, speed 0.6-1.1) for 2500 steps, where it learned to draw shapes; stages 4
# and 5 add 3000 and 5000 steps with a cosine-decayed rate (docs/results.md, session 5).
OLD=runs/world-r8-13
[ -d "$OLD" ] || git worktree add "$OLD" 2531578
(cd "$OLD" && python -m engine pretrain-teacher --out runs/teacher-stage1 --steps 10000 --seed 0 --save-every 1000 \
  && python -m engine pretrain-teacher --init runs/teacher-stage1 --out runs/teacher-stage2 --steps 4000 --seed 1 \
    --lr 3e-4 --lr-schedule constant --warmup-steps 200 --save-every 500)
python -m engine pretrain-teacher --init "$OLD/runs/teacher-stage2" --out runs/teacher-stage3 --steps 2500 --seed 1 \
  --lr 3e-4 --lr-schedule constant --warmup-steps 100 --save-every 1250
python -m engine pretrain-teacher --init runs/teacher-stage3 --out runs/teacher-stage4 --steps 3000 --seed 2 \
  --lr 3e-4 --lr-schedule cosine --warmup-steps 100
python -m engine pretrain-teacher --init runs/teacher-stage4 --out runs/teacher-stage5 --steps 5000 --seed 3 \
  --lr 3e-4 --lr-schedule cosine --warmup-steps 100
rm -rf engine/assets/shapes-tiny && cp -r runs/teacher-stage5 engine/assets/shapes-tiny
python -m engine train-recognizer --out engine/assets/shapes-recognizer --steps 1500 --seed 0
bash scripts/make_students.sh
python -m engine study --seeds 0-2 --out runs/study --json docs/results/study.json --md docs/results/study.md \
  --plot docs/results/study.png
