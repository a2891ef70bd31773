"""The study's figures in words, made from docs/results/study*.json alone: the README's "What it shows" block,
docs/results.md's summary and the phrasing the Distill tab's text shares (when_dfd_helps.py). Every figure and
every resolved / not resolved is read from the JSON (through study_report's paired intervals), so a re-run of the
study changes the words by regenerating them (`python -m engine results --write`), and `--check` (and
tests/test_results_claims.py) fails when the files quote other figures than the JSON holds. Torch-free."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from . import stats
from .confirmatory import IMAGE_TO_VIDEO
from .confirmatory_claims import I2V_CONFIRM, confirmatory_words, load_confirmatory
from .study_report import difference, dominance

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
README = ROOT / "README.md"
RESULTS_MD = ROOT / "docs" / "results.md"
BEGIN, END = "<!-- results:begin (python -m engine results --write) -->", "<!-- results:end -->"
STUDIES = {"t2v": "study.json", "i2v": "study-i2v.json", "ar": "study-ar.json"}
DRIFT = ("drift-ar.json", "drift-ar-seeds12.json")  # the causal students' long videos, per training seed
DFD, CONTROL, TEACHER, DECODED = "dfd-p0.5", "dmd2-continued", "teacher@50:cfg=3", "real-decoded"
# (metric, regime) -> (how the sentence names it, decimals); regime None: per run (the validity gap)
AXES = {
    ("mode_coverage", "underspecified"): ("modes of 8 (underspecified)", 2),
    ("mode_tv", "underspecified"): ("mode TV", 3),
    ("prompt_fidelity", "underspecified"): ("fidelity (underspecified)", 3),
    ("prompt_fidelity", "detailed"): ("fidelity (detailed)", 3),
    ("all_named_correct", "detailed"): ("all named correct (detailed)", 3),
    ("saturation_error_matched", "underspecified"): ("saturation error at its modes (underspecified)", 3),
    ("saturation_error_matched", "detailed"): ("saturation error (detailed)", 3),
    # compared as |ratio - 1| (study_report), quoted as the ratio a reader knows
    ("sharpness_deviation", "underspecified"): ("sharpness / decoded real (underspecified)", 2),
    ("sharpness_deviation", "detailed"): ("sharpness / decoded real (detailed)", 2),
    ("real_gap", None): ("validity gap", 3),
}
DIVERSITY = {("diversity", "underspecified"): ("diversity (underspecified)", 3)}  # docs/results.md's list only
LOWER_IS_BETTER = ("mode_tv", "saturation_error_matched", "sharpness_deviation", "real_gap")
I2V_NAMES = {"mode_coverage": "motions of 8 from one frame", "mode_tv": "motion TV"}
# Variants with a flag of their own (docs/results.md describes every variant).
FLAGS = {
    "dfd-tmin0.5": "`--dfd-t-min 0.5`",
    "dfd-p0.5-rise": "`--data-forcing-schedule rise`",
    "dfd-blend0.5": "`--data-forcing-blend 0.5`",
}
KNOBS = {"dfd-tmin0.5": "dfd t min 0.5", "dfd-p0.5-rise": "data forcing schedule rise"}  # the Distill form's names


class ResultsError(ValueError):
    """A study JSON that is missing or lacks a run the words need."""


def load_studies(folder: Path = RESULTS) -> dict[str, dict]:
    studies = {}
    for kind, name in [*STUDIES.items(), *((f"drift{i}", name) for i, name in enumerate(DRIFT))]:
        path = Path(folder) / name
        try:
            studies[kind] = json.loads(path.read_text())
        except FileNotFoundError:
            raise ResultsError(
                f"{path} is missing; run `python -m engine study ... --json {path}` (or --from-records) first"
            ) from None
        except json.JSONDecodeError as err:
            raise ResultsError(
                f"{path} is not valid JSON ({err}); regenerate it with `python -m engine study`"
            ) from None
        if kind.startswith("drift"):
            if not isinstance(studies[kind].get("drift"), dict):
                raise ResultsError(
                    f"{path} has no 'drift' windows; make it with `python -m engine evaluate "
                    "--num-frames 65 ... --json`"
                )
            continue
        for run in (DFD, CONTROL, TEACHER):
            if run not in studies[kind].get("models", {}):
                raise ResultsError(f"{path} has no run {run!r}; the claims compare {DFD} with {CONTROL} and {TEACHER}")
    confirm = load_confirmatory(folder)  # None until the pre-registered study has run
    if confirm is not None:
        studies["confirm"] = confirm
    i2v_confirm = load_confirmatory(folder, I2V_CONFIRM, IMAGE_TO_VIDEO)
    if i2v_confirm is not None:
        studies["i2v-confirm"] = i2v_confirm
    return studies


def mean_of(study: dict, run: str, metric: str, regime: str | None) -> float | None:
    entry = study["models"].get(run, {})
    cell = entry.get(metric) if regime is None else entry.get("by_regime", {}).get(regime, {}).get(metric)
    return (cell or {}).get("mean")


def _std(study: dict, run: str, metric: str, regime: str) -> float | None:
    return (study["models"][run]["by_regime"].get(regime, {}).get(metric) or {}).get("std")


def number(value: float | None, digits: int, std: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" + (f" ± {std:.{digits}f}" if std else "")


def diff_words(study: dict, run: str, metric: str, regime: str | None, against: str, digits: int) -> tuple[str, str]:
    """The paired difference in words ('+1.22 [+0.49, +1.95]') and its verdict ('better', 'worse', 'not resolved')."""

    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    diff = difference(study, run, metric, regime, against)
    text = stats.interval_text(diff, digits)
    if diff.get("all_equal"):  # no interval: the sign test decides (stats.py)
        text = (
            "equal on every seed"
            if diff["mean"] == 0
            else text.replace(f" (the same on all {diff['n']} seeds: sign test)", f" on each of {diff['n']} seeds")
        )
    return text, stats.verdict(diff, better)


def axis_phrase(
    study: dict, run: str, metric: str, regime: str | None, names: dict, interval: bool = True, means: bool = True
) -> str:
    label, digits = {**AXES, **DIVERSITY}[(metric, regime)]
    label = names.get(metric, label)
    shown = "sharpness_vs_decoded" if metric == "sharpness_deviation" else metric
    ours, theirs = mean_of(study, run, shown, regime), mean_of(study, CONTROL, shown, regime)
    text, _ = diff_words(study, run, metric, regime, CONTROL, digits)
    if metric == "sharpness_deviation":
        text = f"distance from 1: {text}"
    if not means:
        return f"{label} {text}"
    return f"{label} {number(ours, digits)} against {number(theirs, digits)}" + (f" ({text})" if interval else "")


def verdicts(study: dict, names: dict | None = None, axes: dict = AXES) -> dict[str, list[str]]:
    """DFD p=0.5 against the fair control on every axis, sorted into better / worse / not resolved."""
    out: dict[str, list[str]] = {"better": [], "worse": [], "not resolved": []}
    for (metric, regime), (_, digits) in axes.items():
        if mean_of(study, DFD, metric, regime) is None:
            continue
        _, verdict = diff_words(study, DFD, metric, regime, CONTROL, digits)
        # a difference that is not resolved is shown as its interval alone: the means would read as a finding
        out[verdict].append(axis_phrase(study, DFD, metric, regime, names or {}, means=verdict != "not resolved"))
    return out


def seed_count(study: dict) -> int:
    return len(study["training_seeds"])


def _verdict_lines(study: dict, names: dict | None = None, axes: dict = AXES) -> list[str]:
    found = verdicts(study, names, axes)
    return [
        f"- {title}: " + "; ".join(found[key]) + "."
        for key, title in (("better", "Resolved better"), ("worse", "Resolved worse"), ("not resolved", "Not resolved"))
        if found[key]
    ]


def _variants(study: dict) -> list[str]:

    won = dominance(study)
    variants = [v for v in won if v != DFD]
    if not variants:
        return []
    pareto = [v for v in variants if won[v]["not_worse_by_mean"]]
    clean = [v for v in variants if won[v]["no_resolved_loss"]]
    lines = [
        f"- Variants beyond the paper ({len(variants)}, `docs/results.md`): "
        + (
            f"{', '.join(pareto)} beat the control on every axis by the mean"
            if pareto
            else "none beats the control on every axis even by the mean"
        )
        + (f"; no resolved loss on any axis: {', '.join(clean)}." if clean else ".")
    ]
    gainers = [v for v in won if (_diff_mean(study, v, "mode_coverage", "underspecified") or 0) > 0]
    losing = [v for v in gainers if (_diff_mean(study, v, "all_named_correct", "detailed") or 0) < 0]
    if gainers and losing == gainers:  # the trade-off, said only while the JSON shows it for every one
        lines.append(
            f"- Every DFD setting that gains modes ({len(gainers)}) loses detailed all-named-correct by the "
            f"mean: the control's fidelity comes with its collapse ("
            f"{number(mean_of(study, CONTROL, 'mode_coverage', 'underspecified'), 2)} modes where the teacher "
            f"it learned from covers {number(mean_of(study, TEACHER, 'mode_coverage', 'underspecified'), 2)}; all "
            f"named right on detailed prompts in {number(mean_of(study, CONTROL, 'all_named_correct', 'detailed'), 3)}"
            f" of clips where that teacher manages "
            f"{number(mean_of(study, TEACHER, 'all_named_correct', 'detailed'), 3)})."
        )
    close = []  # the settings that come closest: DFD's mode gain (resolved) without its underspecified fidelity loss
    for name in variants:
        modes, modes_verdict = diff_words(study, name, "mode_coverage", "underspecified", CONTROL, 2)
        fid, fid_verdict = diff_words(study, name, "prompt_fidelity", "underspecified", CONTROL, 3)
        if modes_verdict == "better" and fid_verdict != "worse":
            losses = [_axis_name(axis) for axis, a in won[name]["axes"].items() if a["verdict"] == "worse"]
            flag = f" ({FLAGS[name]})" if name in FLAGS else ""
            close.append(
                f"`{name}`{flag}, {study['models'][name].get('seeds')} seeds: modes {modes}, underspecified "
                f"fidelity {fid} ({fid_verdict}), resolved losses: {', '.join(losses) or 'none'}"
            )
    if close:
        lines.append(
            "- A resolved mode gain without a resolved loss of underspecified fidelity: " + "; ".join(close) + "."
        )
    return lines


def _axis_name(axis: str) -> str:
    """study_report's axis key ('prompt_fidelity (detailed) vs dmd2-continued') as the words name it."""
    metric, _, rest = axis.partition(" (")
    regime = rest.split(")")[0]
    return AXES.get((metric, regime), (axis,))[0]


def wrap_lines(lines: list[str]) -> str:
    """Lines of at most 116 characters; a bullet's continuation indented under its text."""
    out = []
    for line in lines:
        indent = "  " if line.startswith("- ") else ""
        out.append(textwrap.fill(line, 116, subsequent_indent=indent, break_on_hyphens=False) if line else "")
    return "\n".join(out)


def _diff_mean(study: dict, run: str, metric: str, regime: str) -> float | None:

    return difference(study, run, metric, regime, CONTROL).get("mean")


def _teachers(study: dict) -> str:
    parts = []
    for against, what in (
        (TEACHER, "the 50-step training-CFG teacher's"),
        ("teacher@4:cfg=1", "a 4-NFE teacher's without CFG"),
        ("teacher@2:cfg=3", "with CFG"),
    ):
        if against in study["models"]:
            _, verdict = diff_words(study, DFD, "prompt_fidelity", "detailed", against, 3)
            parts.append(f"{what} {number(mean_of(study, against, 'prompt_fidelity', 'detailed'), 3)} ({verdict})")
    return (
        f"- DFD's detailed fidelity {number(mean_of(study, DFD, 'prompt_fidelity', 'detailed'), 3)} against "
        + ", ".join(parts)
        + "."
    )


def _modes_line(study: dict, metric: str, what: str) -> str:
    runs = [("dmd2", "DMD2"), (CONTROL, "the control"), (DFD, "DFD")]
    students = ", ".join(
        f"{label} {number(mean_of(study, r, metric, 'underspecified'), 2, _std(study, r, metric, 'underspecified'))}"
        for r, label in runs
        if r in study["models"]
    )
    refs = ", ".join(
        f"{label} {number(mean_of(study, r, metric, 'underspecified'), 2)}"
        for r, label in ((TEACHER, "the training-CFG teacher"), (DECODED, "decoded real clips"))
        if mean_of(study, r, metric, "underspecified") is not None
    )
    return f"{what}, underspecified prompts: {students}; {refs}."


def _drift(studies: dict) -> str:
    """Saturation along long videos: how many causal students rise from the first window to the last, and DFD's
    rise against the control's, paired over training seeds."""

    rises: dict[str, dict[int, float]] = {}
    length = frames = None
    for kind in studies:
        if not kind.startswith("drift"):
            continue
        for model, windows in studies[kind]["drift"].items():
            parts = model.rstrip("/").split("/")
            if len(parts) < 2 or not parts[-2].startswith("seed"):
                continue  # a reference (the teacher), not a trained causal student
            rises.setdefault(parts[-1], {})[int(parts[-2][4:])] = windows[-1]["saturation"] - windows[0]["saturation"]
            length, frames = windows[0]["frames"][1] - windows[0]["frames"][0], windows[-1]["frames"][1]
    every = [r for runs in rises.values() for r in runs.values()]
    if not every or DFD not in rises or CONTROL not in rises:
        raise ResultsError(f"{' and '.join(DRIFT)} hold no {DFD} and {CONTROL} students (runs/.../seedN/NAME)")
    diff = stats.paired_difference(rises[DFD], rises[CONTROL])
    return (
        f"- Past their {length}-frame training length ({frames} frames) the saturation rises from the first "
        f"window to the last in {sum(r > 0 for r in every)} of {len(every)} causal students (by "
        f"{min(every):+.3f} to {max(every):+.3f}); DFD's rise minus the control's "
        f"{stats.interval_text(diff)} ({stats.verdict(diff, 'lower')})."
    )


def readme_block(studies: dict[str, dict]) -> str:
    """The README's "What it shows" section body (between the markers)."""
    t2v, i2v, ar = studies["t2v"], studies["i2v"], studies["ar"]
    cfg = t2v["models"][DFD].get("trained_cfg")
    lines = [
        f"On the built-in world, {seed_count(t2v)} training seeds; `docs/results.md` has the tables, the commands "
        f"and the machine. DFD p = 0.5 against the fair control (DMD2 continued for as many steps), both distilled "
        f'from the CFG {cfg:g} teacher; differences are paired over seeds with 95% intervals, "resolved" when '
        "the interval excludes 0. " + _modes_line(t2v, "mode_coverage", "Modes of 8"),
        "",
        *_verdict_lines(t2v),
        _teachers(t2v),
        # once confirmed, the README gives the pre-registered verdicts; the exploratory variants stay in results.md
        *(["", *confirmatory_words(studies["confirm"])] if "confirm" in studies else _variants(t2v)),
        "",
        *(_i2v_confirm_lines(studies["i2v-confirm"]) if "i2v-confirm" in studies else _i2v_lines(i2v)),
        "",
        f"Causal (streaming) students ({seed_count(ar)} training seeds, 17 frames): "
        + _modes_line(ar, "mode_coverage", "Modes of 8"),
        *_verdict_lines(ar),
        _drift(studies),
    ]
    return wrap_lines(lines)


def _i2v_lines(i2v: dict) -> list[str]:
    """The image-to-video study on the world's own frames, where a frame leaves about two motions open."""
    return [
        f"Image-to-video (`shapes-tiny-i2v`, {seed_count(i2v)} training seeds): "
        + _modes_line(i2v, "mode_coverage", "motions of 8 from one frame")
        + f" The teacher keeps the given frame's object in "
        f"{mean_of(i2v, TEACHER, 'frame_consistency', 'underspecified'):.0%} of clips when the caption names none.",
        *_verdict_lines(i2v, I2V_NAMES),
    ]


def _i2v_confirm_lines(study: dict) -> list[str]:
    """The pre-registered image-to-video study on frames that leave several motions open (it replaces the
    one above in the README; docs/results.md keeps both)."""
    seeds = f"{IMAGE_TO_VIDEO.seeds[0]}-{IMAGE_TO_VIDEO.seeds[-1]}"
    intro = (
        f"Image-to-video on frames that leave several motions open (`shapes-tiny-ti2v`; pre-registered before its "
        f"runs, `{IMAGE_TO_VIDEO.document}`; training seeds {seeds}, one-sided paired tests at 0.05): "
        + _modes_line(study, "mode_tv", "motion TV against the exact posterior (lower is nearer)")
        + f" The teacher keeps the frame's object in "
        f"{mean_of(study, TEACHER, 'frame_consistency', 'underspecified'):.0%} of clips when the caption names none."
    )
    return confirmatory_words(study, IMAGE_TO_VIDEO, intro)


def results_block(studies: dict[str, dict]) -> str:
    """docs/results.md's summary of the text-to-video study: every axis's verdict, more training alone, and
    DFD against the teachers."""
    t2v = studies["t2v"]
    lines = [
        f"What is resolved over {seed_count(t2v)} seeds (DFD p = 0.5 against the fair control, paired 95% intervals):",
        *_verdict_lines(t2v, axes={**AXES, **DIVERSITY}),
    ]
    if "dmd2" in t2v["models"]:
        text, verdict = diff_words(t2v, CONTROL, "mode_coverage", "underspecified", "dmd2", 2)
        lines.append(
            f"- Whether more DMD training alone recovers modes (the control against DMD2): {text} ({verdict})."
        )
    lines.append(_teachers(t2v))
    free = "teacher@4:cfg=1"
    if free in t2v["models"]:
        lines.append(
            f"- On underspecified prompts the 4-NFE teacher without CFG covers "
            f"{number(mean_of(t2v, free, 'mode_coverage', 'underspecified'), 2)} modes against DFD's "
            f"{number(mean_of(t2v, DFD, 'mode_coverage', 'underspecified'), 2)}, at fidelity "
            f"{number(mean_of(t2v, free, 'prompt_fidelity', 'underspecified'), 3)} against "
            f"{number(mean_of(t2v, DFD, 'prompt_fidelity', 'underspecified'), 3)}; the one with CFG (2 steps) covers "
            f"{number(mean_of(t2v, 'teacher@2:cfg=3', 'mode_coverage', 'underspecified'), 2)}."
        )
    return wrap_lines(lines)


def with_block(text: str, block: str, name: str = "README.md") -> str:
    """text with what is between the markers replaced by block; ResultsError when name's text has no markers."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ResultsError(
            f"{name} has no {BEGIN} ... {END} markers around its study figures; add them where the figures belong"
        )
    return text[: start + len(BEGIN)] + "\n" + block + "\n" + text[end:]
