#!/usr/bin/env bash
# Rebuild every shipped asset with the project's own commands, in order. Each asset also records the
# exact command that made it (dfd_studio.json, recognizer.json, made_by.json) and its settings.
# On a 2-core CPU, run alone: teacher ~95 + ~28 + ~15 + ~17 + ~29 + ~19-31 min, recognizer ~10-20 min,
# students and the studies several hours (docs/results.md has each one's wall time).
set -euo pipefail
cd "$(dirname "$0")/.."
# The teacher is trained in six stages, each continuing the last with --init (its dfd_studio.json keeps
# every stage's command and world). Stages 1-5 were trained on earlier versions of the shapes world, so
# replaying them checks those versions out: commit 2531578 (objects of radius 8-13 px) for stages 1-2,
# commit 3011b90 (today's sizes, a cross as the fourth shape) for stages 3-5. Stage 6 runs on today's
# world; continuing a teacher maps the word "cross" to "diamond" by itself (renamed_words in its metadata).
SMALL=runs/world-small-objects
CROSS=runs/world-cross
[ -d "$SMALL" ] || git worktree add "$SMALL" 2531578
[ -d "$CROSS" ] || git worktree add "$CROSS" 3011b90
(cd "$SMALL" && python -m engine pretrain-teacher --out runs/teacher-stage1 --steps 10000 --seed 0 --save-every 1000 \
  && python -m engine pretrain-teacher --init runs/teacher-stage1 --out runs/teacher-stage2 --steps 4000 --seed 1 \
    --lr 3e-4 --lr-schedule constant --warmup-steps 200 --save-every 500)
(cd "$CROSS" && python -m engine pretrain-teacher --init "../world-small-objects/runs/teacher-stage2" \
    --out runs/teacher-stage3 --steps 2500 --seed 1 --lr 3e-4 --lr-schedule constant --warmup-steps 100 \
    --save-every 1250 \
  && python -m engine pretrain-teacher --init runs/teacher-stage3 --out runs/teacher-stage4 --steps 3000 --seed 2 \
    --lr 3e-4 --lr-schedule cosine --warmup-steps 100 \
  && python -m engine pretrain-teacher --init runs/teacher-stage4 --out runs/teacher-stage5 --steps 5000 --seed 3 \
    --lr 3e-4 --lr-schedule cosine --warmup-steps 100)
python -m engine pretrain-teacher --init "$CROSS/runs/teacher-stage5" --out runs/teacher-stage6 --steps 3000 --seed 5 \
  --lr 3e-4 --lr-schedule cosine --warmup-steps 100 --balanced-detailed 0.5
rm -rf engine/assets/shapes-tiny && cp -r runs/teacher-stage6 engine/assets/shapes-tiny
# The image-to-video teacher: shapes-tiny widened to take the first frame, trained on with each clip's own.
python -m engine pretrain-teacher --init engine/assets/shapes-tiny --task i2v --out runs/teacher-i2v --steps 3000 \
  --seed 0 --lr 3e-4 --lr-schedule cosine --warmup-steps 100 --balanced-detailed 0.5 --save-every 1000
# A second stage at constant LR with more high-noise steps (--time-shift 2): after the first, samples kept the
# frame's object only loosely (docs/results.md, "The image-to-video teacher").
python -m engine pretrain-teacher --init runs/teacher-i2v --task i2v --out runs/teacher-i2v-2 --steps 2000 --seed 1 \
  --lr 3e-4 --lr-schedule constant --warmup-steps 50 --balanced-detailed 0.5 --time-shift 2 --save-every 500
rm -rf engine/assets/shapes-tiny-i2v && cp -r runs/teacher-i2v-2 engine/assets/shapes-tiny-i2v
# The frame-replacement image-to-video teacher (Wan2.2-TI2V's layout) on frames that leave motions open: 3000
# steps, then 1000 more from those weights (a fresh optimizer), the first 500-step save past its pre-registered
# gate (docs/results/preregistration-i2v.md; docs/results.md, "Image-to-video on frames that leave motions open").
I2V_FRAME="--task i2v --i2v-conditioning frame --i2v-frames mixed --lr 3e-4 --lr-schedule constant --warmup-steps 50 \
  --balanced-detailed 0.5 --time-shift 2 --pool-clips 8000 --save-every 500"
python -m engine pretrain-teacher --init engine/assets/shapes-tiny $I2V_FRAME --out runs/teacher-ti2v --steps 3000 --seed 2
python -m engine pretrain-teacher --init runs/teacher-ti2v $I2V_FRAME --out runs/teacher-ti2v-2 --steps 1000 --seed 3
rm -rf engine/assets/shapes-tiny-ti2v && cp -r runs/teacher-ti2v-2 engine/assets/shapes-tiny-ti2v
python -m engine train-recognizer --out engine/assets/shapes-recognizer --steps 1500 --seed 0
bash scripts/make_students.sh
python -m engine study --seeds 0-4 --variants dmd2-continued,dfd-p0.5,dfd-p0.5-sample@3,dfd-tmin0.5@3,dfd-blend0.5@3,dfd-p0.5-decay@3 \
  --out runs/study --json docs/results/study.json --md docs/results/study.md --plot docs/results/study.png
python -m engine study --base shapes-tiny-i2v --seeds 0-2 --variants dmd2-continued,dfd-p0.5 --out runs/study-i2v \
  --json docs/results/study-i2v.json --md docs/results/study-i2v.md --plot docs/results/study-i2v.png
OMP_NUM_THREADS=1 python -m engine study --base shapes-tiny-ti2v --seeds 30-32 --variants dmd2-continued,dfd-p0.5 \
  --eval-seeds 8 --out runs/study-i2v-mixed --json docs/results/study-i2v-mixed.json \
  --md docs/results/study-i2v-mixed.md --plot docs/results/study-i2v-mixed.png
python -m engine study --causal --seeds 0-2 --variants dmd2-continued,dfd-p0.5 --out runs/study-ar \
  --json docs/results/study-ar.json --md docs/results/study-ar.md --plot docs/results/study-ar.png
