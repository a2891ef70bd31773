"""Is the reader right? The shipped recognizer's accuracy on real shapes-world clips degraded to the
sharpness, blocking and saturation samples show (engine/evaluation/reader_check.py).

    OMP_NUM_THREADS=1 python scripts/reader_check.py --clips 256 --prompts all \
        --models real-decoded,dmd2,dmd2-continued,dfd,teacher@4:cfg=1,teacher@50:cfg=3 \
        --json docs/results/reader-check.json --md docs/results/reader-check.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.evaluation import reader_check  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=256, help="real clips, every factor uniform (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clips' draw (default 0)")
    p.add_argument("--base", default="shapes-tiny", help="the base whose autoencoder makes the decoded clips")
    p.add_argument(
        "--models",
        default="",
        help="also sample these models (evaluate's names: dfd, dmd2-continued, "
        "teacher@4:cfg=1, ...) and compare the two readers on their clips",
    )
    p.add_argument("--prompts", default="detailed", help="the prompt set of --models (default detailed)")
    p.add_argument("--json", default=None, help="write the result here")
    p.add_argument("--md", default=None, help="write the markdown table here")
    args = p.parse_args()
    if args.clips < 8:
        p.error(f"--clips {args.clips}: need at least 8 clips for per-shape accuracies to mean anything")
    result = reader_check.run(args.clips, args.seed, args.base)
    models = [m for m in args.models.split(",") if m.strip()]
    if models:
        result["generated"] = reader_check.generated(models, args.prompts, base=args.base)
    result["made_by"] = "python scripts/reader_check.py " + " ".join(sys.argv[1:])
    table = reader_check.to_markdown(result)
    print(table)
    for path, text in ((args.json, json.dumps(result, indent=2) + "\n"), (args.md, table)):
        if path:
            tmp = Path(path).with_suffix(Path(path).suffix + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)  # never a half-written file in place of a good one


if __name__ == "__main__":
    main()
