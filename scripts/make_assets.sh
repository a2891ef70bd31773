#!/usr/bin/env bash
# Rebuild every shipped asset with the project's own commands, in order. Each asset also records the
# exact command that made it (dfd_studio.json, recognizer.json, made_by.json) and its settings.
# On this 2-core CPU, run alone: teacher ~95 + ~28 + ~15 + ~17 + ~29 + ~19-31 min, recognizer ~10-20 min,
# students and the 3-seed study ~40 min.
set -euo pipefail
cd "$(dirname "$0")/.."
# The teacher, in six stages, each on the world it was trained on (every stage's dfd_studio.json keeps it):
# - stages 1-2 on the first world (objects of radius 8-13 px, speed 0.9-1.8 px/frame; git commit 2531578):
#   10k steps (cosine rate), then 4k more at a constant 3e-4 (the shipped 4000-step save of a 15000-step
#   constant-rate run is what `--steps 4000` writes);
# - stages 3-5 on the world of bigger, slower objects whose fourth shape was a cross (commit 3011b90):
#   2500 steps at a constant rate, where it learned to draw shapes, then 3000 and 5000 cosine-decayed;
# - stage 6 on today's world, where the cross became a diamond (the teacher never learned to draw a cross:
#   docs/results.md, session 6). "diamond" takes the token id "cross" had (renamed_words in its metadata).
OLD=runs/world-r8-13
CROSS=runs/world-cross
[ -d "$OLD" ] || git worktree add "$OLD" 2531578
[ -d "$CROSS" ] || git worktree add "$CROSS" 3011b90
(cd "$OLD" && python -m engine pretrain-teacher --out runs/teacher-stage1 --steps 10000 --seed 0 --save-every 1000 \
  && python -m engine pretrain-teacher --init runs/teacher-stage1 --out runs/teacher-stage2 --steps 4000 --seed 1 \
    --lr 3e-4 --lr-schedule constant --warmup-steps 200 --save-every 500)
(cd "$CROSS" && python -m engine pretrain-teacher --init "../world-r8-13/runs/teacher-stage2" --out runs/teacher-stage3 \
    --steps 2500 --seed 1 --lr 3e-4 --lr-schedule constant --warmup-steps 100 --save-every 1250 \
  && python -m engine pretrain-teacher --init runs/teacher-stage3 --out runs/teacher-stage4 --steps 3000 --seed 2 \
    --lr 3e-4 --lr-schedule cosine --warmup-steps 100 \
  && python -m engine pretrain-teacher --init runs/teacher-stage4 --out runs/teacher-stage5 --steps 5000 --seed 3 \
    --lr 3e-4 --lr-schedule cosine --warmup-steps 100)
# (stage 6 was run as `--init engine/assets/shapes-tiny` when that folder held stage 5: the same weights)
python -m engine pretrain-teacher --init "$CROSS/runs/teacher-stage5" --out runs/teacher-stage6 --steps 3000 --seed 5 \
  --lr 3e-4 --lr-schedule cosine --warmup-steps 100 --balanced-detailed 0.5
rm -rf engine/assets/shapes-tiny && cp -r runs/teacher-stage6 engine/assets/shapes-tiny
python -m engine train-recognizer --out engine/assets/shapes-recognizer --steps 1500 --seed 0
bash scripts/make_students.sh
python -m engine study --seeds 0-2 --out runs/study --json docs/results/study.json --md docs/results/study.md \
  --plot docs/results/study.png
