"""Is an I2V teacher's lost shape the recognizer's misreading? Samples a shapes image-to-video base's teacher
from each underspecified prompt's frame (evaluate's frames and seeds, so the clips are evaluate's), and reads
each clip's shape with the recognizer and with the independent template reader
(engine/evaluation/reader_check.py), against the frame's own shape.

    python scripts/i2v_shape_readers.py --base CHECKPOINT [--model teacher@50:cfg=3] [--seeds 8]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.evaluation.evaluate import Session  # noqa: E402
from engine.evaluation.reader_check import _templates, template_shape  # noqa: E402
from engine.evaluation.settings import EvalSettings  # noqa: E402
from engine.evaluation.specs import ModelSpec  # noqa: E402
from engine.shapes import world  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--model", default="teacher@50:cfg=3")
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    settings = EvalSettings(models=[args.model], prompts="underspecified", seeds=args.seeds, base=args.base)
    session = Session(settings, True)
    session.load(True)
    templates, spec = _templates(), ModelSpec.parse(args.model)
    counts, by_shape = Counter(), Counter()
    for prompt in world.prompt_set("underspecified"):
        shape = session.first_of(prompt).shape
        clips, _, _ = session.sample(spec, prompt, list(range(1, args.seeds + 1)))
        predicted, _ = session.recognizer.predict(clips)
        for clip, p in zip(clips, predicted):
            template = template_shape(clip, templates)[0]
            counts["clips"] += 1
            counts["recognizer keeps"] += p["shape"] == shape
            counts["template keeps"] += template == shape
            counts["either keeps"] += p["shape"] == shape or template == shape
            counts["readers agree"] += p["shape"] == template
            by_shape[(shape, "clips")] += 1
            by_shape[(shape, "recognizer")] += p["shape"] == shape
            by_shape[(shape, "template")] += template == shape
    print(f"{args.base} {args.model}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for shape in world.SHAPES:
        n = by_shape[(shape, "clips")]
        if n:
            recognizer, template = by_shape[(shape, "recognizer")], by_shape[(shape, "template")]
            print(f"  {shape}: {n} clips, recognizer keeps {recognizer}, template keeps {template}")


if __name__ == "__main__":
    main()
