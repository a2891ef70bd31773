"""Measuring: `evaluate` (models on the shapes world), `study` (the training-seed study) and `bench`
(sampling speed, one training step)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..evaluation.prompts import BUILT_IN, read_prompt_file
from ..evaluation.resume import parts_folder
from ..evaluation.settings import EvalSettings
from ..models.names import ModelError, check_model
from .progress import CliError, bar, cli_error, seed_range
from .sample import student_folder


def _eval_settings(args):
    """The command's flags as EvalSettings, checked (names, files, values) before any model loads."""
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise CliError("--models is empty; e.g. --models teacher@50,teacher@4")
    settings = EvalSettings(
        models=models,
        prompts=args.prompts,
        seeds=args.seeds,
        base=args.base,
        data_dir=args.data_dir,
        features=[f.strip() for f in (args.features or "").split(",") if f.strip()],
        adherence=args.adherence,
        real=args.real,
        real_clips=args.real_clips,
        device=args.device,
        batch=args.batch,
        num_frames=args.num_frames,
        height=args.height,
        width=args.width,
        parts=str(parts_folder(args.json)) if args.json else None,
        frames=args.frames,
    )
    try:
        settings.validate()
        if args.prompts not in BUILT_IN:
            read_prompt_file(args.prompts)
    except ValueError as err:  # ModelError is one
        raise cli_error(err) from None
    return settings


def cmd_evaluate(args) -> int:
    settings = _eval_settings(args)
    try:  # a typo is refused before torch and diffusers load (~10 s)
        check_model(args.base)
    except ValueError as err:
        raise cli_error(err) from None
    # torch: only once the options are sound
    from ..evaluation.evaluate import run_evaluation, to_markdown, write_outputs
    from ..evaluation.features import FeatureError

    shown = bar("evaluate", 1, unit="model x prompt")

    def progress(done, total, label):
        shown.total = total
        shown.set_postfix_str(label)
        shown.update(done - shown.n)

    try:
        result = run_evaluation(settings, progress=progress)
    except (ValueError, FeatureError, FileNotFoundError) as err:  # ModelError and FeatureError are ValueErrors
        raise cli_error(err) from None
    finally:
        shown.close()
    if result["resumed_parts"]:
        print(f"resumed: {result['resumed_parts']} model x prompt results read from {settings.parts}", file=sys.stderr)
    write_outputs(result, args.json, args.md, args.plot)
    print(to_markdown(result))
    return 0


def cmd_study(args) -> int:
    """The training-seed study (engine/evaluation/study.py): run what is missing, evaluate, write mean +- std."""
    from ..evaluation import study  # torch: only once the options are sound
    from ..evaluation.evaluate import write_outputs

    seeds = seed_range(args.seeds or "0-2")
    variants = [v for v in args.variants.split(",") if v.strip()] if args.variants else None
    if args.dmd2_steps < 1 or args.post_steps < 1:
        raise CliError("--dmd2-steps and --post-steps must be at least 1")
    out = Path(args.out)
    try:
        runs = study.plan(out, seeds, args.base, args.dmd2_steps, args.post_steps, variants, causal=args.causal)
    except ValueError as err:
        raise cli_error(err) from None
    if args.from_records:
        return _study_from_records(args, runs if variants or args.seeds else None)
    shown = bar("study runs", len(runs), unit="run", initial=sum(r.done for r in runs))
    try:
        result = study.run_study(
            runs,
            out,
            args.base,
            args.eval_seeds,
            log=shown.write,
            started=lambda run: shown.set_postfix_str(f"seed {run.seed} {run.name}"),
            finished=lambda run: shown.update(1),
        )
    except RuntimeError as err:
        raise CliError(f"{err}; run the same command again to continue from there") from None
    finally:
        shown.close()
    result["plan"] = {
        "base": args.base,
        "causal": args.causal,
        "dmd2_steps": args.dmd2_steps,
        "post_steps": args.post_steps,
        "eval_seeds": args.eval_seeds,
        "commands": ["python -m engine " + " ".join(r.command) for r in runs],
    }
    write_outputs(result, args.json, args.md, args.plot, to_markdown=study.to_markdown, plot=study.plot)
    print(study.to_markdown(result))
    return 0


def _json_plan(path) -> dict:
    """The run plan of a study JSON already at path ({} when there is none or it is not a study's)."""
    try:
        plan = json.loads(Path(path).read_text()).get("plan") if path else None
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: v for k, v in plan.items() if k != "rederived_from"} if isinstance(plan, dict) else {}


def _study_from_records(args, runs) -> int:
    """The study's tables from a records folder alone (no runs, no evaluation); limited to the plan's runs
    when --seeds or --variants name them."""
    from ..evaluation import study  # torch: only once the options are sound
    from ..evaluation.evaluate import write_outputs

    records = Path(args.from_records)
    if not (records / "references.json").is_file():
        raise CliError(
            f"{records}: not a study records folder (no references.json); give the records folder "
            "a study wrote (<out>/records) or copied (docs/results/study-records)"
        )
    result = study.rederive(records, {(r.seed, r.name) for r in runs} if runs is not None else None)
    if not [m for m in result["models"].values() if m.get("seeds")]:
        raise CliError(f"{records}: no evaluated run of the asked seeds and variants is recorded there")
    # rewriting a study's own JSON keeps how its runs were made (plan.commands): the records do not hold it
    kept = _json_plan(args.json)
    result["plan"] = {**kept, "rederived_from": str(records)}
    write_outputs(result, args.json, args.md, args.plot, to_markdown=study.to_markdown, plot=study.plot)
    print(study.to_markdown(result))
    return 0


def cmd_bench(args) -> int:
    if not 1 <= args.rounds <= 10:
        raise CliError(f"--rounds must be between 1 and 10, got {args.rounds}")
    from ..evaluation.bench import bench_sampling, bench_train_step  # torch: only once the options are sound

    try:
        size = (args.num_frames, args.height, args.width)
        if args.what == "data-loading":
            from ..evaluation.bench_data import bench_data_loading, table  # torch: only once the options are sound

            try:
                workers = tuple(int(w) for w in args.workers.split(","))
            except ValueError:
                raise CliError(f"--workers must be counts >= 0 separated by commas, got {args.workers!r}") from None
            result = bench_data_loading(
                args.base,
                workers,
                data=args.data,
                clips=args.clips,
                batches=args.batches,
                batch_size=args.batch_size or 8,
                step_ms=args.step_ms,
            )
            print(table(result), file=sys.stderr)
        elif args.what == "sampling":
            result = bench_sampling(
                args.base, student_folder(args.lora), videos=args.videos, size=size, rounds=args.rounds
            )
        else:
            result = bench_train_step(
                args.base,
                batch_size=args.batch_size,
                size=size,
                gradient_checkpointing=args.gradient_checkpointing,
                task=args.task,
                student_input=args.student_input,
            )
    except (ValueError, ModelError) as err:
        raise cli_error(err) from None
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="measure models on any base: diversity, prompt adherence, colour, motion, "
        "NFE and time (and the shapes world's exact metrics)",
    )
    p.add_argument(
        "--models",
        required=True,
        help="comma list: real, teacher@50, teacher@4, teacher@N:cfg=S, dmd2, dfd, a job id, a LoRA folder",
    )
    p.add_argument("--data-dir", default=None, help="studio data folder, to name students by job id")
    p.add_argument(
        "--prompts",
        default="all",
        help="a prompt file (one per line, or .jsonl with prompt and optional seeds and image), or a shapes-world "
        "set: "
        "detailed, underspecified, all (default all)",
    )
    p.add_argument("--seeds", type=int, default=8, help="seeds 1..N per prompt (default 8)")
    p.add_argument(
        "--frames",
        default=None,
        help="image-to-video bases: a folder of first frames, one per prompt, named after it "
        "(a-red-cat.png for 'A red cat'); a JSONL prompt's image comes first",
    )
    p.add_argument("--base", default="shapes-tiny", help="base model: shapes-tiny, a diffusers folder or a hub id")
    p.add_argument(
        "--features",
        default=None,
        help="diversity with these encoders: clip:MODEL,dinov2:MODEL (a folder or hub id, e.g. "
        "clip:openai/clip-vit-large-patch14,dinov2:facebook/dinov2-large)",
    )
    p.add_argument(
        "--adherence",
        default=None,
        help="CLIP model for prompt adherence (default: the clip: model of --features, if it has a text tower)",
    )
    p.add_argument(
        "--real", default=None, help="folder of held-out captioned clips: the reference outside the shapes world"
    )
    p.add_argument("--real-clips", type=int, default=64, help="at most this many of the --real clips (default 64)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when there is one)")
    p.add_argument("--batch", type=int, default=None, help="videos per sampling batch (default: all seeds of a prompt)")
    p.add_argument("--num-frames", type=int, default=None, help="video frames, 4k+1 (default: the model's)")
    p.add_argument("--height", type=int, default=None, help="video height (default: the model's)")
    p.add_argument("--width", type=int, default=None, help="video width (default: the model's)")
    p.add_argument(
        "--json",
        default=None,
        help="write the full result as JSON here; results are kept in a .parts folder beside it as they "
        "are measured, and a re-run with the same settings resumes from them",
    )
    p.add_argument("--md", default=None, help="write the markdown table here")
    p.add_argument("--plot", default=None, help="write a PNG bar chart here")
    p.set_defaults(func=cmd_evaluate)


def _add_study(sub) -> None:
    p = sub.add_parser("study", help="the training-seed study: DMD2, the DMD2 control and DFD variants, mean +- std")
    p.add_argument("--out", default="runs/study", help="folder for the runs and evaluations (default runs/study)")
    p.add_argument("--seeds", default=None, help="training seeds: 0-2, or a list 0,1,2 (default 0-2)")
    p.add_argument("--base", default="shapes-tiny", help="a shapes-world teacher (default shapes-tiny)")
    p.add_argument(
        "--causal",
        action="store_true",
        help="causal (autoregressive, distill --task ar) students of a text-to-video base",
    )
    p.add_argument(
        "--dmd2-steps", type=int, default=1250, help="steps of the DMD2 stage (default 1250, the shipped one)"
    )
    p.add_argument("--post-steps", type=int, default=200, help="steps of every post-training run (default 200)")
    p.add_argument("--variants", default=None, help="comma list of post-training variants (default: all of them)")
    p.add_argument("--eval-seeds", type=int, default=8, help="sampling seeds per prompt in the evaluation (default 8)")
    p.add_argument("--json", default=None, help="write mean/std per model and regime as JSON here")
    p.add_argument("--md", default=None, help="write the markdown tables here")
    p.add_argument("--plot", default=None, help="write a PNG with error bars here")
    p.add_argument(
        "--from-records",
        default=None,
        metavar="RECORDS",
        help="rebuild the tables from a records folder alone (no training, no evaluation)",
    )
    p.set_defaults(func=cmd_study)


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="measure sampling speed (student vs teacher), one training step, or folder data "
        "loading with and without background workers",
    )
    p.add_argument("what", choices=["sampling", "train-step", "data-loading"])
    p.add_argument(
        "--base",
        default="shapes-tiny",
        help="base model (default shapes-tiny); wan2.1-1.3b-random: Wan2.1-T2V-1.3B's config, random weights",
    )
    p.add_argument(
        "--lora",
        default=None,
        help="student for sampling: a LoRA folder or a shipped one (dfd, dfd-ar, ...) "
        "(default: the first shipped one of the base)",
    )
    p.add_argument("--videos", type=int, default=8, help="videos per sampling batch (default 8)")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="sampling: interleaved student/teacher rounds after the warm-up (default 3; 1 at Wan's size on a GPU)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="train-step batch (default: the recipe's)")
    p.add_argument("--gradient-checkpointing", action="store_true", help="train-step: recompute activations")
    p.add_argument(
        "--task",
        default="t2v",
        choices=["t2v", "i2v", "ar"],
        help="train-step: the run's task (ar: the causal student's chunk-by-chunk rollout) (default t2v)",
    )
    p.add_argument(
        "--student-input",
        default=None,
        choices=["paired", "backward"],
        help="train-step: where the student's sample starts (default: the recipe's)",
    )
    p.add_argument("--num-frames", type=int, default=None, help="video frames, 4k+1 (default: the model's)")
    p.add_argument("--height", type=int, default=None, help="video height (default: the model's)")
    p.add_argument("--width", type=int, default=None, help="video width (default: the model's)")
    p.add_argument("--workers", default="0,2", help="data-loading: the data_workers counts to compare (default 0,2)")
    p.add_argument("--data", default=None, help="data-loading: a folder or data-set config (default: generated clips)")
    p.add_argument(
        "--clips", type=int, default=12, help="data-loading: generated clips, 6 s of 640x360 at 30 fps (default 12)"
    )
    p.add_argument("--batches", type=int, default=50, help="data-loading: batches taken after preparing (default 50)")
    p.add_argument(
        "--step-ms",
        type=float,
        default=0.0,
        help="data-loading: a simulated training step after each batch, in ms (default 0)",
    )
    p.add_argument("--json", default=None, help="also write the figures here")
    p.set_defaults(func=cmd_bench)


def add_parsers(sub) -> None:
    _add_evaluate(sub)
    _add_study(sub)
    _add_bench(sub)
