"""A look at the clips the two shape readers dispute: an I2V teacher sampled from the frames of the evaluation's
circle prompts (its frames and seeds, so evaluate's clips), each clip's frames 0, 4, 8, 12, 16 in a row; the
clips whose shape the recognizer reads as not the frame's go to one image, the others to a second.

    python scripts/i2v_disputed_clips.py --base CHECKPOINT --out DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.evaluation.evaluate import Session  # noqa: E402
from engine.evaluation.reader_check import _templates, template_shape  # noqa: E402
from engine.evaluation.settings import EvalSettings  # noqa: E402
from engine.evaluation.specs import ModelSpec  # noqa: E402

PROMPTS = ("a red shape", "a circle", "a shape on a dark background")  # the prompts whose frame is a circle


def _save(rows: list[np.ndarray], path: Path) -> None:
    if rows:
        img = np.concatenate(rows[:8], axis=0)
        Image.fromarray(img).resize((img.shape[1] * 2, img.shape[0] * 2), Image.NEAREST).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="teacher@50:cfg=3")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    session = Session(EvalSettings(models=[args.model], prompts="underspecified", seeds=8, base=args.base), True)
    session.load(True)
    spec, templates = ModelSpec.parse(args.model), _templates()
    disputed, agreed = [], []
    for prompt in PROMPTS:
        first = session.first_of(prompt)
        clips, _, _ = session.sample(spec, prompt, list(range(1, 9)))
        predicted, _ = session.recognizer.predict(clips)
        for seed, (clip, p) in enumerate(zip(clips, predicted), start=1):
            template, iou = template_shape(clip, templates)
            print(f"{prompt} seed {seed}: frame {first.shape}, recognizer {p['shape']}, template {template} ({iou})")
            row = np.concatenate([clip[j] for j in (0, 4, 8, 12, 16)], axis=1)
            (disputed if p["shape"] != first.shape else agreed).append(row)
    _save(disputed, out / "disputed.png")
    _save(agreed, out / "agreed.png")


if __name__ == "__main__":
    main()
