"""The training-seed study of docs/results.md: DMD2, the fair DMD2 control, and DFD variants, each trained
with several seeds, evaluated the same way, and reported as mean +- std over the seeds.

Per training seed s the plan is: a DMD2 student from the teacher, then post-training runs that all start
from it (the same number of steps each): DMD continued (the control: without it a DFD gain may just be
more training), DFD at several p, and both again with backward-simulated student inputs and with
underspecified training captions (the regimes where docs/method.md predicts mode averaging). Every run is a
`python -m engine distill` command in its own folder, skipped when already finished, so an interrupted
study picks up where it stopped. Evaluation runs `python -m engine evaluate` once for the references
(real clips, the teacher at 50 and 4 steps) and once per seed for its students.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..models.students import LORA_FILE
from .evaluate import save_figure

REFERENCES = ("real", "teacher@50", "teacher@4")
# Post-training variants: name -> distill options on top of --init <the seed's dmd2>.
VARIANTS = {
    "dmd2-continued": ["--method", "dmd2"],
    "dfd-p0.25": ["--method", "dfd", "--data-forcing-prob", "0.25"],
    "dfd-p0.5": ["--method", "dfd", "--data-forcing-prob", "0.5"],
    "dfd-p1": ["--method", "dfd", "--data-forcing-prob", "1"],
    "dmd2-continued-backward": ["--method", "dmd2", "--student-input", "backward"],
    "dfd-p0.5-backward": ["--method", "dfd", "--data-forcing-prob", "0.5", "--student-input", "backward"],
    "dmd2-continued-underspecified": ["--method", "dmd2", "--caption-regime", "underspecified"],
    "dfd-p0.5-underspecified": ["--method", "dfd", "--data-forcing-prob", "0.5", "--caption-regime", "underspecified"],
}
METRICS = ("prompt_fidelity", "all_named_correct", "diversity", "mode_coverage", "mode_tv", "saturation_error",
           "sharpness_ratio", "flicker")


@dataclass
class Run:
    name: str  # dmd2 or a VARIANTS key
    seed: int
    out: Path
    command: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return (self.out / LORA_FILE).is_file() and (self.out / "made_by.json").is_file()


def plan(out: Path, seeds: list[int], base: str, dmd2_steps: int, post_steps: int,
         variants: list[str] | None = None) -> list[Run]:
    """Every distill run of the study, in an order where each run's --init exists before it starts."""
    unknown = set(variants or []) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}")
    runs = []
    for seed in seeds:
        folder = Path(out) / f"seed{seed}"
        dmd2 = folder / "dmd2"
        common = ["--base", base, "--data", "shapes", "--seed", str(seed)]
        runs.append(Run("dmd2", seed, dmd2, ["distill", "--method", "dmd2", *common, "--steps", str(dmd2_steps),
                                             "--out", str(dmd2)]))
        for name in variants or list(VARIANTS):
            runs.append(Run(name, seed, folder / name, ["distill", *VARIANTS[name], "--init", str(dmd2), *common,
                                                        "--steps", str(post_steps), "--out", str(folder / name)]))
    return runs


def execute(run: Run, log) -> float:
    """Run one distill command (fresh folder), record its command and wall time; returns seconds."""
    import shutil

    if run.out.exists():
        shutil.rmtree(run.out)  # an unfinished run restarts from scratch, as its recorded time must be whole
    command = [sys.executable, "-m", "engine", *run.command]
    log(f"$ python -m engine {shlex.join(run.command)}")
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{run.name} (seed {run.seed}) failed: {result.stderr.strip().splitlines()[-1:]}")
    (run.out / "made_by.json").write_text(json.dumps(
        {"made_by": "python -m engine " + shlex.join(run.command), "wall_seconds": round(seconds, 1),
         "note": f"a run of `python -m engine study` (training seed {run.seed}); wall time on the machine it ran on"},
        indent=2) + "\n")
    return seconds


def _evaluated(models: list[str], eval_seeds: int, base: str, json_path: Path) -> dict:
    """`python -m engine evaluate` of these models on every prompt; its JSON result."""
    command = ["evaluate", "--models", ",".join(models), "--prompts", "all", "--seeds", str(eval_seeds),
               "--base", base, "--json", str(json_path)]
    if subprocess.run([sys.executable, "-m", "engine", *command]).returncode != 0:
        raise RuntimeError(f"evaluate failed for {json_path}; see above")
    return json.loads(json_path.read_text())


def run_study(runs: list[Run], out: Path, base: str, eval_seeds: int, log=print, started=None, finished=None) -> dict:
    """Train the runs not done yet, evaluate what changed (references once), and combine over seeds.
    `started(run)` / `finished(run)` report progress. Raises RuntimeError when a command fails."""
    fresh_seeds = set()
    for run in (r for r in runs if not r.done):
        if started:
            started(run)
        execute(run, log)
        fresh_seeds.add(run.seed)
        if finished:
            finished(run)
    ref_path = Path(out) / "references.json"
    references = json.loads(ref_path.read_text()) if ref_path.is_file() else _evaluated(
        list(REFERENCES), eval_seeds, base, ref_path)
    per_seed, gaps, seconds = {}, {}, {}
    for seed in dict.fromkeys(r.seed for r in runs):
        seed_runs = [r for r in runs if r.seed == seed]
        path = Path(out) / f"seed{seed}" / "eval.json"
        per_seed[seed] = (json.loads(path.read_text()) if path.is_file() and seed not in fresh_seeds
                          else _evaluated([str(r.out) for r in seed_runs], eval_seeds, base, path))
        for r in seed_runs:
            gaps.setdefault(r.name, []).append(json.loads((r.out / "summary.json").read_text()).get("real_gap_last20"))
            seconds.setdefault(r.name, []).append(json.loads((r.out / "made_by.json").read_text())["wall_seconds"])
    return combine(references, per_seed, gaps, seconds)


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof 1; 0 for a single value) of the finite values."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": round(float(v.mean()), 4), "std": round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 4),
            "n": int(len(v))}


def combine(references: dict, per_seed: dict[int, dict], gaps: dict[str, list[float]] | None = None,
            seconds: dict[str, list[float]] | None = None) -> dict:
    """Mean +- std over training seeds of every metric, per caption regime.

    `references` is one evaluate result (real, teachers: no training seed); `per_seed[s]` is the evaluate
    result of seed s's students, whose model names end in the run name (a folder path). `gaps` maps a run
    name to its validity gaps (summary.json, one per seed); `seconds` to its wall times."""
    table: dict[str, dict] = {}
    for name, entry in references["models"].items():
        table[name] = {"seeds": 0, "by_regime": {
            regime: {k: mean_std([row.get(k)]) for k in METRICS} for regime, row in entry["by_regime"].items()}}
    names: list[str] = []
    for result in per_seed.values():
        for model in result["models"]:
            label = Path(model).name
            if model not in REFERENCES and label not in names:
                names.append(label)
    for label in names:
        rows = [(seed, m) for seed, r in per_seed.items() for model, m in r["models"].items() if Path(model).name == label]
        regimes = sorted({g for _, m in rows for g in m["by_regime"]})
        table[label] = {"seeds": len(rows), "by_regime": {
            regime: {k: mean_std([m["by_regime"].get(regime, {}).get(k) for _, m in rows]) for k in METRICS}
            for regime in regimes}}
        if gaps and label in gaps:
            table[label]["real_gap"] = mean_std(gaps[label])
        if seconds and label in seconds:
            table[label]["wall_seconds"] = mean_std(seconds[label])
    return {"training_seeds": sorted(per_seed), "models": table}


def _cell(stat: dict | None) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    return f"{stat['mean']:.3f}" if not stat.get("std") else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def to_markdown(study: dict) -> str:
    """One table per caption regime: mean ± std over training seeds; the validity gap beside them."""
    columns = [("prompt_fidelity", "prompt fidelity ↑"), ("diversity", "diversity ↑"),
               ("mode_coverage", "modes covered ↑"), ("mode_tv", "mode TV ↓"), ("saturation_error", "saturation error ↓"),
               ("sharpness_ratio", "sharpness / real")]
    seeds = ", ".join(str(s) for s in study["training_seeds"])
    lines = [f"Mean ± std over training seeds {seeds} (references have no training seed).", ""]
    for regime in ("detailed", "underspecified"):
        lines += [f"**{regime} prompts**", "",
                  "| model | " + " | ".join(c for _, c in columns) + " | validity gap ‖x_real − G‖² |",
                  "|---" * (len(columns) + 2) + "|"]
        for name, entry in study["models"].items():
            row = entry["by_regime"].get(regime)
            if row is None:
                continue
            cells = [_cell(row.get(k)) for k, _ in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {_cell(entry.get('real_gap'))} |")
        lines.append("")
    return "\n".join(lines)


def plot(study: dict, path: Path) -> Path:
    """Bars with std error bars: diversity, fidelity, mode TV, saturation error and sharpness, one row per
    regime (a panel whose metric is undefined in that regime is left blank)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("diversity", "diversity ↑"), ("prompt_fidelity", "prompt fidelity ↑"), ("mode_tv", "mode TV ↓"),
            ("saturation_error", "saturation error ↓"), ("sharpness_ratio", "sharpness / real (1 = real)")]
    regimes = ("detailed", "underspecified")
    names = list(study["models"])
    fig, axes = plt.subplots(len(regimes), len(keys), figsize=(3.4 * len(keys), 3.3 * len(regimes)), squeeze=False)
    for r, regime in enumerate(regimes):
        for c, (key, title) in enumerate(keys):
            ax = axes[r][c]
            stats = [study["models"][n]["by_regime"].get(regime, {}).get(key) or {} for n in names]
            if not any(s.get("mean") is not None for s in stats):  # e.g. mode TV: no free factor to count
                ax.axis("off")
                ax.set_title(f"{title} ({regime}): not defined", fontsize=9)
                continue
            means = [s.get("mean") or 0.0 for s in stats]
            stds = [s.get("std") or 0.0 for s in stats]
            # tab20: the study has 12 models, so the default 10-colour cycle would repeat colours
            ax.bar(range(len(names)), means, yerr=stds, capsize=2, color=[plt.get_cmap("tab20")(i % 20) for i in range(len(names))])
            ax.set_xticks(range(len(names)), names, rotation=55, ha="right", fontsize=7)
            ax.set_title(f"{title} ({regime})", fontsize=9)
    return save_figure(fig, path)
