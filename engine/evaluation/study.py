"""The training-seed study of docs/results.md: DMD2, the fair DMD2 control, and DFD variants, each trained
with several seeds, evaluated the same way, and reported as mean +- std over the seeds with a paired 95%
interval per difference from the control (stats.py).

The plan of runs is study_plan.py; the tables, claims and figure are study_report.py. Every run is a
`python -m engine distill` command in its own folder, skipped when already finished, so an interrupted
study picks up where it stopped. Evaluation runs `python -m engine evaluate` once for the references and
once per student; an evaluation is re-used only while its fingerprint (the evaluation code,
its settings and the students' LoRA files) is unchanged. The small files of every run and evaluation are
copied to `<out>/records`, from which `rederive` rebuilds the tables without the runs. Each run is
evaluated on its own (`<run>/eval.json`), so the headline study and a sweep in the same folder share them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..core.files import LORA_FILE
from .specs import ModelSpec
from .study_plan import CONTROL, VARIANTS, Run, execute, keep_records, plan  # noqa: F401  (the command's names)
from .study_references import DERIVED, add_reference_terms
from .study_sharpness import MATCHED, add_matched_sharpness
from .study_tables import plot, to_markdown  # noqa: F401  (the command's writers)

# The teacher at the training CFG (SHAPES_PRESET's guidance 3) is the headline reference; CFG 5 is the
# shipped sampler's. Equal budget: a 4-step student costs 4 NFE, the teacher 2 per CFG step, 1 without.
REFERENCES = (
    "real",
    "real-decoded",
    "teacher@50:cfg=3",
    "teacher@50:cfg=5",
    "teacher@4:cfg=3",
    "teacher@2:cfg=3",
    "teacher@4:cfg=1",
)
METRICS = (
    "prompt_fidelity",
    "all_named_correct",
    "diversity",
    "mode_coverage",
    "mode_tv",
    "saturation_error",
    "sharpness_ratio",
    "flicker",
    "frame_consistency",
    "first_frame_psnr",
    *DERIVED,
    *MATCHED,
)
# Kept per prompt too (each run's value per prompt and seed), for pre-registered endpoints over named prompts
# (confirmatory.py: the I2V study's centre frames).
PROMPT_METRICS = ("mode_tv",)
ROOT = Path(__file__).resolve().parents[1]
# What an evaluation's numbers depend on: a change in any of these files makes a fresh evaluation.
FINGERPRINTED = ("evaluation", "shapes", "generation", "models", "core", "config/sample.py", "assets/shapes-recognizer")
# Modules no evaluate run imports (the study's own, its words, and checks run beside it): changing them re-uses
# evaluations (tests/test_study.py checks that an evaluate run imports none of them).
_NOT_EVALUATION = {
    "study.py",
    "study_plan.py",
    "study_report.py",
    "study_sharpness.py",
    "study_tables.py",
    "stats.py",
    "confirmatory.py",
    "confirmatory_claims.py",
    "claims.py",
    "when_dfd_helps.py",
    "reader_check.py",
    "continuous_factors.py",
    "continuous_report.py",
    "continuous_study.py",
    "bench.py",
    "bench_data.py",
}


def _files_of(entry: str) -> list[Path]:
    path = ROOT / entry
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".py", ".json", ".safetensors"))
    )
    return [p for p in files if p.name not in _NOT_EVALUATION and "__pycache__" not in p.parts]


def fingerprint(models: list[str], eval_seeds: int, base: str, loras: list[Path] = ()) -> dict:
    """A hash of the evaluation code, the recognizer, the settings and the students' LoRA files."""
    h = hashlib.sha256()
    for path in [p for entry in FINGERPRINTED for p in _files_of(entry)] + [Path(p) for p in loras]:
        h.update(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name).encode())
        h.update(path.read_bytes() if path.is_file() else b"missing")
    settings = {"models": list(models), "eval_seeds": eval_seeds, "base": base, "prompts": "all"}
    h.update(json.dumps(settings, sort_keys=True).encode())
    return {"hash": h.hexdigest(), "settings": settings}


def _evaluated(models: list[str], eval_seeds: int, base: str, json_path: Path, loras=(), log=print) -> dict:
    """The evaluation of these models: re-used from json_path when its fingerprint matches, else run."""
    stamp = fingerprint(models, eval_seeds, base, loras)
    if json_path.is_file():
        kept = json.loads(json_path.read_text())
        if kept.get("study_fingerprint", {}).get("hash") == stamp["hash"]:
            return kept
        log(f"{json_path}: the evaluation code, settings or students changed; evaluating again")
    command = [
        "evaluate",
        "--models",
        ",".join(models),
        "--prompts",
        "all",
        "--seeds",
        str(eval_seeds),
        "--base",
        base,
        "--json",
        str(json_path),
    ]
    if subprocess.run([sys.executable, "-m", "engine", *command]).returncode != 0:
        raise RuntimeError(f"evaluate failed for {json_path}; see above")
    result = json.loads(json_path.read_text())
    result["study_fingerprint"] = stamp
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def run_study(runs: list[Run], out: Path, base: str, eval_seeds: int, log=print, started=None, finished=None) -> dict:
    """Train the runs not done yet, evaluate what changed (references once), keep the records, and combine
    over seeds. `started(run)` / `finished(run)` report progress. Raises RuntimeError when a command fails."""
    for run in (r for r in runs if not r.done):
        if started:
            started(run)
        execute(run, log)
        if finished:
            finished(run)
    records = Path(out) / "records"
    records.mkdir(parents=True, exist_ok=True)
    _evaluated(list(REFERENCES), eval_seeds, base, Path(out) / "references.json", log=log)
    shutil.copyfile(Path(out) / "references.json", records / "references.json")
    for r in runs:  # each run on its own, so the headline study and a sweep share evaluations
        _evaluated([str(r.out)], eval_seeds, base, r.out / "eval.json", [r.out / LORA_FILE], log)
        keep_records(r, records)
    return rederive(records, {(r.seed, r.name) for r in runs})


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def rederive(records: Path, runs: set[tuple[int, str]] | None = None) -> dict:
    """The study's result from its records folder alone (references.json and, per run, eval.json,
    summary.json, made_by.json and distill_config.json); `runs` limits it to those (seed, name) pairs."""
    records = Path(records)
    references = json.loads((records / "references.json").read_text())
    per_seed, gaps, seconds, guidance, steps = {}, {}, {}, {}, {}
    for folder in sorted(records.glob("seed*"), key=lambda p: int(p.name[4:])):
        seed = int(folder.name[4:])
        for run in sorted(p for p in folder.iterdir() if p.is_dir()):
            evaluation = _json(run / "eval.json")
            if runs is not None and (seed, run.name) not in runs or not evaluation:
                continue
            merged = per_seed.setdefault(seed, {"models": {}, "per_prompt": {}})
            for model, entry in evaluation["models"].items():
                if Path(model).name == run.name:
                    merged["models"][model] = entry
                    merged["per_prompt"][model] = evaluation.get("per_prompt", {}).get(model, {})
            gaps.setdefault(run.name, {})[seed] = _json(run / "summary.json").get("real_gap_last20")
            seconds.setdefault(run.name, {})[seed] = _json(run / "made_by.json").get("wall_seconds")
            made = _json(run / "distill_config.json")
            guidance[run.name], steps[run.name] = made.get("guidance"), made.get("steps")
    return combine(references, per_seed, gaps, seconds, guidance, steps)


def _prompts(per_prompt: dict[int, dict]) -> list[str]:
    return list(dict.fromkeys(p for rows in per_prompt.values() for p in rows))


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof 1; 0 for a single value) of the finite values."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": round(float(v.mean()), 4),
        "std": round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 4),
        "n": int(len(v)),
    }


def _reference_cfg(name: str) -> float | None:
    spec = ModelSpec.parse(name) if name.startswith(("teacher@", "real")) else None
    return spec.guidance if spec is not None and spec.kind == "teacher" else None


def combine(
    references: dict,
    per_seed: dict[int, dict],
    gaps: dict[str, dict[int, float]] | None = None,
    seconds: dict[str, dict[int, float]] | None = None,
    guidance: dict[str, float] | None = None,
    steps: dict[str, int] | None = None,
) -> dict:
    """Mean +- std over training seeds of every metric, per caption regime, with each seed's value kept.

    `references` is one evaluate result (real, real-decoded, teachers: no training seed); `per_seed[s]` is
    the evaluate result of seed s's students, whose model names end in the run name (a folder path). `gaps`
    and `seconds` map a run name to its validity gap and wall time per seed; `guidance` to the teacher CFG
    it was trained against; `steps` to its training steps (a pre-registered analysis applies only to the
    pre-registered ones)."""
    decoded = references.get("per_prompt", {}).get("real-decoded")
    for result in (references, *per_seed.values()):
        add_reference_terms(result, decoded)
        add_matched_sharpness(result, references.get("base"))  # a merged seed names no base: the references' own
    table: dict[str, dict] = {}
    for name, entry in references["models"].items():
        table[name] = {
            "seeds": 0,
            "nfe": entry.get("nfe"),
            "cfg": _reference_cfg(name),
            "by_regime": {
                regime: {k: mean_std([row.get(k)]) for k in METRICS} for regime, row in entry["by_regime"].items()
            },
        }
    names = list(dict.fromkeys(Path(m).name for r in per_seed.values() for m in r["models"] if m not in REFERENCES))
    for label in names:
        rows = {
            seed: m for seed, r in per_seed.items() for model, m in r["models"].items() if Path(model).name == label
        }
        regimes = sorted({g for m in rows.values() for g in m["by_regime"]})
        by_seed = {
            regime: {k: {s: m["by_regime"].get(regime, {}).get(k) for s, m in rows.items()} for k in METRICS}
            for regime in regimes
        }
        table[label] = {
            "seeds": len(rows),
            "nfe": next(iter(rows.values())).get("nfe"),
            "trained_cfg": (guidance or {}).get(label),
            "steps": (steps or {}).get(label),
            "by_seed": by_seed,
            "by_regime": {
                regime: {k: mean_std(list(v.values())) for k, v in metrics.items()}
                for regime, metrics in by_seed.items()
            },
        }
        per_prompt = {
            seed: r.get("per_prompt", {}).get(model, {})
            for seed, r in per_seed.items()
            for model in r["models"]
            if Path(model).name == label
        }
        table[label]["by_prompt"] = {
            k: {p: {s: rows_.get(p, {}).get(k) for s, rows_ in per_prompt.items()} for p in _prompts(per_prompt)}
            for k in PROMPT_METRICS
        }
        for key, source in (("real_gap", gaps), ("wall_seconds", seconds)):
            if source and label in source:
                kept = {s: v for s, v in source[label].items() if s in rows}
                table[label][key] = mean_std(list(kept.values()))
                table[label][f"{key}_by_seed"] = kept
    return {"training_seeds": sorted(per_seed), "control": CONTROL, "models": table}
