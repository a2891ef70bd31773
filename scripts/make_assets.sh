#!/usr/bin/env bash
# Rebuild every shipped asset with the project's own commands, in order. Each asset also records the
# exact command that made it (dfd_studio.json, recognizer.json, made_by.json) and its settings.
# On this 2-core CPU: teacher ~50 min, recognizer ~10 min, students ~8 min.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m engine pretrain-teacher --out engine/assets/shapes-tiny --steps 10000 --seed 0 --save-every 1000
python -m engine train-recognizer --out engine/assets/shapes-recognizer --steps 1500 --seed 0
bash scripts/make_students.sh
