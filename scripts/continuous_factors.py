"""The continuous factors (start position, size, speed, shade) of the models' clips against real clips, and
the motion-speed figure (engine/evaluation/continuous_report.py; docs/results.md, "Continuous factors").

    nice -n 10 env OMP_NUM_THREADS=1 python scripts/continuous_factors.py --seeds 8 \
        --group T2V shapes-tiny teacher@50:cfg=3,dmd2,dmd2-continued,dfd \
        --group I2V shapes-tiny-i2v teacher@50:cfg=3,dmd2-i2v,dfd-i2v \
        --group causal shapes-tiny dmd2-ar,dfd-ar \
        --json docs/results/continuous-factors.json --md docs/results/continuous-factors.md \
        --plot docs/results/continuous-factors-speed.png

Over a study's training seeds (its run folder kept), seed-paired (engine/evaluation/continuous_study.py):

    python scripts/continuous_factors.py --study runs/study-confirm 20-24 dmd2,dmd2-continued,dfd-p0.5 \
        --base shapes-tiny --validate-clips 0 --json OUT.json --md OUT.md
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config.seeds import parse_seeds  # noqa: E402
from engine.evaluation import continuous_report, continuous_study  # noqa: E402
from engine.evaluation.report import save_figure  # noqa: E402


def _write(path: str | None, text: str) -> None:
    if path:
        tmp = Path(path).with_suffix(Path(path).suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)  # never a half-written file in place of a good one


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--group",
        nargs=3,
        action="append",
        default=[],
        metavar=("NAME", "BASE", "MODELS"),
        help="a group of models on one base: its name, the base, comma-separated models (evaluate's names)",
    )
    p.add_argument(
        "--study",
        nargs=3,
        default=None,
        metavar=("RUNS", "SEEDS", "VARIANTS"),
        help="a study's run folder (python -m engine study --out), its training seeds (20-24) and variants "
        "(comma-separated): every seed's students, and the last variant against each other paired over seeds",
    )
    p.add_argument("--base", default="shapes-tiny", help="the base of --study's students (default shapes-tiny)")
    p.add_argument("--prompts", default="all", help="detailed, underspecified or all (default all)")
    p.add_argument("--seeds", type=int, default=8, help="clips per model and prompt (default 8)")
    p.add_argument("--real-clips", type=int, default=32, help="real clips per prompt (default 32)")
    p.add_argument("--validate-clips", type=int, default=256, help="real clips of the reader check (0: none)")
    p.add_argument("--json", default=None, help="write the result here")
    p.add_argument("--md", default=None, help="write the markdown tables here")
    p.add_argument("--plot", default=None, help="write the speed figure (PNG) here")
    args = p.parse_args()
    if args.seeds < 2 or args.real_clips < 2:
        p.error("--seeds and --real-clips need at least 2 clips each: a spread needs two")
    if not args.group and not args.study and not args.validate_clips:
        p.error("nothing to do: give --group NAME BASE MODELS, --study RUNS SEEDS VARIANTS or --validate-clips N")
    layout = None
    if args.study:
        runs, seeds, variants = args.study
        variants = [v.strip() for v in variants.split(",") if v.strip()]
        if len(variants) < 2:
            p.error(f"--study: {len(variants)} variant given; give two or more, e.g. dmd2-continued,dfd-p0.5")
        try:
            layout = continuous_study.study_models(runs, parse_seeds(seeds), variants)
        except ValueError as error:
            p.error(f"--study: {error}")
        models = ",".join(folder for runs_of in layout.values() for folder in runs_of.values())
        args.group.append(["study", args.base, models])
    started = datetime.now(UTC)
    result = {"made_by": "python scripts/continuous_factors.py " + " ".join(sys.argv[1:]), "groups": {}}
    if args.validate_clips:
        result["validation"] = continuous_report.validate(args.validate_clips)
    for name, base, models in args.group:
        g = continuous_report.measure(
            [m for m in models.split(",") if m.strip()], base, args.prompts, args.seeds, args.real_clips
        )
        g["speed_summary"] = {
            model: {
                regime: continuous_report.speed_summary(values, g["speeds"]["real"].get(regime, []))
                for regime, values in by_regime.items()
            }
            for model, by_regime in g["speeds"].items()
        }
        result["groups"][name] = g
    if layout:
        named = continuous_study.relabel(result["groups"]["study"], layout)
        last = list(named)[-1]
        contrasts = [(last, other) for other in reversed(list(named)[:-1])]
        result["study"] = continuous_study.seed_paired(result["groups"]["study"], named, contrasts)
    result["date"] = started.strftime("%Y-%m-%d")
    result["minutes"] = round((datetime.now(UTC) - started).total_seconds() / 60, 1)
    table = continuous_report.to_markdown(result)
    if layout:
        table = continuous_study.to_markdown(result["study"]) + "\n" + table
    print(table)
    _write(args.json, json.dumps(result, indent=1) + "\n")
    _write(args.md, f"Made by `{result['made_by']}` on {result['date']}.\n\n" + table)
    if args.plot and result["groups"]:
        save_figure(continuous_report.plot(result), Path(args.plot))


if __name__ == "__main__":
    main()
