"""`python -m engine ...`: the command line of the engine. Each subcommand parses its arguments,
validates them (one-line errors, exit code 2), shows a progress bar for long work and calls the
engine's public functions."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from ..config.distill import DistillConfig


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _seed_range(text: str) -> list[int]:
    from ..config.seeds import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as err:
        raise CliError(str(err)) from None


def _bar(desc: str, total: int):
    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, file=sys.stderr, mininterval=0.5)


def _loss_bar(desc: str, total: int, every: int):
    """A progress bar and the progress(step, total, loss) callback that drives it."""
    bar = _bar(desc, total)

    def progress(step, total, loss):
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if step % every == 0 or step == total:
            bar.refresh()

    return bar, progress


def cmd_pretrain_teacher(args) -> int:
    if args.steps < 1:
        raise CliError("--steps must be at least 1")
    if args.pool_clips < args.batch_size:
        raise CliError("--pool-clips must be at least --batch-size")
    if args.lr <= 0:
        raise CliError("--lr must be positive")
    if args.time_shift <= 0:
        raise CliError("--time-shift must be positive (1 trains every noise level equally)")
    if not 0 <= args.balanced_detailed < 1:
        raise CliError("--balanced-detailed must be in [0, 1): the fraction of each batch with uniform factors")
    if args.init and not Path(args.init).is_dir() and args.init != "shapes-tiny":
        raise CliError(f"--init {args.init}: no such folder; give a teacher folder written by pretrain-teacher")
    from ..shapes.teacher import TeacherConfig, pretrain_teacher  # torch and diffusers: only once the options are sound

    cfg = TeacherConfig(
        steps=args.steps,
        seed=args.seed,
        batch_size=args.batch_size,
        pool_clips=args.pool_clips,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        lr_schedule=args.lr_schedule,
        time_shift=args.time_shift,
        balanced_detailed=args.balanced_detailed,
        init=args.init,
    )
    command = "python -m engine pretrain-teacher " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    bar, progress = _loss_bar("pretrain teacher", cfg.steps, every=20)

    try:
        meta = pretrain_teacher(cfg, Path(args.out), command, save_every=args.save_every, progress=progress)
    except ValueError as err:
        raise CliError(str(err)) from None
    finally:
        bar.close()
    print(f"saved {args.out} ({meta['trained_steps']} steps, loss {meta['final_loss_ema']}, {meta['train_seconds']} s)")
    return 0


def cmd_sample(args) -> int:
    from ..config.sample import SampleConfig
    from ..models.names import ModelError, check_model, check_video_shape, video_factors

    lora = args.lora
    if lora and not Path(lora).is_dir():  # a shipped student by name
        from ..models.students import shipped_students

        shipped = {s.name: s.lora_dir for s in shipped_students()}
        if lora not in shipped:
            raise CliError(f"no student {lora!r}: give a LoRA folder or a shipped student ({', '.join(shipped)})")
        lora = str(shipped[lora])
    cfg = SampleConfig(
        base=args.base,
        prompt=args.prompt,
        seeds=_seed_range(args.seeds),
        steps=args.steps,
        guidance=args.cfg,
        lora=lora,
        num_frames=args.num_frames,
        height=args.height,
        width=args.width,
        scale=args.scale,
    )
    try:  # settings and the model's name first: a typo is refused before torch and diffusers load (~10 s)
        cfg.validate()
        _, folder = check_model(cfg.base)
        factors = video_factors(folder) if folder is not None else None
        if factors:
            check_video_shape(*factors, cfg.num_frames, cfg.height, cfg.width)
        from ..generation.generate import generate
        from ..models.base import load_base_model

        model = load_base_model(cfg.base)
        model.check_video_shape(cfg.num_frames or model.num_frames, cfg.height or model.height, cfg.width or model.width)
    except (ValueError, ModelError) as err:
        raise CliError(str(err)) from None
    bar = _bar(f"sampling {len(cfg.seeds)} video(s)", cfg.steps)

    def progress(step, total):
        bar.total = total
        bar.update(step - bar.n)

    try:
        result = generate(cfg, args.out, model=model, progress=progress)
    except (ValueError, ModelError) as err:
        raise CliError(str(err)) from None
    finally:
        bar.close()
    for path in result.paths:
        print(path)
    print(f"{len(result.paths)} video(s), {result.nfe} network evaluations each, {result.seconds:.2f} s", file=sys.stderr)
    return 0


def cmd_train_recognizer(args) -> int:
    from ..shapes.recognizer import RecognizerConfig, train_recognizer

    cfg = RecognizerConfig(steps=args.steps, seed=args.seed)
    command = "python -m engine train-recognizer " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    bar, progress = _loss_bar("train recognizer", cfg.steps, every=10)

    meta = train_recognizer(cfg, Path(args.out), command, progress=progress)
    bar.close()
    print(f"saved {args.out}; held-out accuracy {meta['heldout_accuracy']}")
    return 0


def cmd_export_world(args) -> int:
    from ..shapes.world import export_folder

    if args.n < 1:
        raise CliError("--n must be at least 1")
    bar = _bar("export clips", args.n)
    try:
        export_folder(args.out, args.n, seed=args.seed, detailed_only=args.detailed_only, progress=lambda i: bar.update(1))
    finally:
        bar.close()  # before any error line, which would otherwise land on the bar's line
    print(args.out)
    return 0


def cmd_evaluate(args) -> int:
    from ..models.names import ModelError, check_model
    from ..evaluation.specs import ModelSpec

    models = [m for m in args.models.split(",") if m.strip()]
    if not models:
        raise CliError("--models is empty; e.g. --models teacher@50,teacher@4")
    try:  # the names first: a typo is refused before torch and diffusers load (~10 s)
        for name in models:
            ModelSpec.parse(name, args.data_dir)
        check_model(args.base)
    except ValueError as err:  # ModelError is one
        raise CliError(str(err)) from None
    from ..evaluation.evaluate import evaluate, to_markdown, write_outputs

    bar = _bar("evaluate", 1)

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.n)

    try:
        features = [f for f in (args.features or "").split(",") if f.strip()]
        result = evaluate(models, args.prompts, args.seeds, base=args.base, progress=progress, data_dir=args.data_dir,
                          features=features)
    except (ValueError, ModelError, FileNotFoundError) as err:
        raise CliError(str(err)) from None
    finally:
        bar.close()
    write_outputs(result, args.json, args.md, args.plot)
    print(to_markdown(result))
    return 0


def cmd_study(args) -> int:
    """The training-seed study (engine/study.py): run what is missing, evaluate, write mean +- std."""
    from ..evaluation import study
    from ..evaluation.evaluate import write_outputs

    seeds = _seed_range(args.seeds)
    variants = [v for v in args.variants.split(",") if v.strip()] if args.variants else None
    if args.dmd2_steps < 1 or args.post_steps < 1:
        raise CliError("--dmd2-steps and --post-steps must be at least 1")
    out = Path(args.out)
    try:
        runs = study.plan(out, seeds, args.base, args.dmd2_steps, args.post_steps, variants)
    except ValueError as err:
        raise CliError(str(err)) from None
    done = sum(r.done for r in runs)
    bar = tqdm(total=len(runs), initial=done, desc="study runs", unit="run", file=sys.stderr)
    try:
        result = study.run_study(runs, out, args.base, args.eval_seeds, log=bar.write,
                                 started=lambda run: bar.set_postfix_str(f"seed {run.seed} {run.name}"),
                                 finished=lambda run: bar.update(1))
    except RuntimeError as err:
        raise CliError(f"{err}; run the same command again to continue from there") from None
    finally:
        bar.close()
    result["plan"] = {"base": args.base, "dmd2_steps": args.dmd2_steps, "post_steps": args.post_steps,
                      "eval_seeds": args.eval_seeds, "commands": ["python -m engine " + " ".join(r.command) for r in runs]}
    write_outputs(result, args.json, args.md, args.plot, to_markdown=study.to_markdown, plot=study.plot)
    print(study.to_markdown(result))
    return 0


def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per DistillConfig field (the same typed config as the job row and the studio form).
    Every default is None so that the recipe defaults can be told apart from the user's choices."""
    import dataclasses

    from ..config.distill import HELP, DistillConfig

    for f in dataclasses.fields(DistillConfig):
        if f.name in ("out", "betas"):
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        if kind == "bool":
            parser.add_argument(flag, action="store_true", default=None, help=HELP.get(f.name))
        elif f.name == "t_list":
            parser.add_argument(flag, default=None, help=HELP.get(f.name),
                                type=lambda v: [float(x) for x in v.split(",") if x.strip()])
        else:
            kind = kind.replace(" | None", "")
            caster = int if kind == "int" else float if kind == "float" else str
            choices = {"method": ["dmd2", "dfd"], "student_input": ["paired", "backward"],
                       "caption_regime": ["detailed", "underspecified", "mixed"],
                       "mixed_precision": ["auto", "no", "bf16"]}.get(f.name)
            parser.add_argument(flag, type=caster, default=None, choices=choices, help=HELP.get(f.name))


def distill_config_from_args(args) -> "DistillConfig":
    """Paper defaults, then the built-in world's preset when the base is shapes-tiny, then the user's."""
    import dataclasses

    from ..config.distill import SHAPES_PRESET, DistillConfig

    values = DistillConfig().to_dict()
    base = getattr(args, "base", None) or values["base"]
    if base == "shapes-tiny":
        values.update(SHAPES_PRESET)
    for f in dataclasses.fields(DistillConfig):
        given = getattr(args, f.name, None)
        if given is not None and f.name != "out":
            values[f.name] = given
    values["out"] = getattr(args, "out", None)
    return DistillConfig.from_dict(values)


class _BarCallbacks:
    """The trainer's callbacks for a terminal: a progress bar with the loss terms, and log lines."""

    def __init__(self, total: int):
        self.bar = _bar("distill", total)

    def on_step(self, step, total, terms, it_per_s, eta_s):
        self.bar.n = step
        shown = {k: f"{v:.4g}" for k, v in terms.items() if "@" not in k}
        self.bar.set_postfix(shown, refresh=True)

    def on_checkpoint(self, step, path):
        self.bar.write(f"checkpoint step {step}: {path}", file=sys.stderr)

    def on_artifact(self, kind, path, label):
        pass

    def log(self, message):
        self.bar.write(message, file=sys.stderr)

    def should_stop(self):
        return False


def cmd_distill(args) -> int:
    from ..models.names import check_model

    try:  # settings and the base's name first: refused before torch and diffusers load (~10 s)
        cfg = distill_config_from_args(args).validate()
        check_model(cfg.base)
    except ValueError as err:  # ModelError is one
        raise CliError(str(err)) from None
    from ..distill.trainer import Distiller, TrainingDiverged, latest_checkpoint

    out = Path(args.out)
    if latest_checkpoint(out) is not None and not args.resume:
        raise CliError(f"{out} already holds checkpoints of a run; add --resume to continue it or choose another --out")
    main_process = int(os.environ.get("RANK", "0")) == 0  # under accelerate launch, only rank 0 reports
    callbacks = _BarCallbacks(cfg.steps) if main_process else None
    try:
        Distiller(cfg, out, callbacks=callbacks).train()
    except (TrainingDiverged, ValueError) as err:  # ValueError: our readable sentences (data, model loading)
        raise CliError(str(err)) from None
    finally:
        if callbacks:
            callbacks.bar.close()
    if main_process:
        print(out / "pytorch_lora_weights.safetensors")
    return 0


def cmd_bench(args) -> int:
    if not 1 <= args.rounds <= 10:
        raise CliError(f"--rounds must be between 1 and 10, got {args.rounds}")
    from ..evaluation.bench import bench_sampling, bench_train_step
    from ..models.base import ModelError

    try:
        size = (args.num_frames, args.height, args.width)
        if args.what == "sampling":
            result = bench_sampling(args.base, args.lora, videos=args.videos, size=size, rounds=args.rounds)
        else:
            result = bench_train_step(args.base, batch_size=args.batch_size, size=size,
                                      gradient_checkpointing=args.gradient_checkpointing)
    except (ValueError, ModelError) as err:
        raise CliError(str(err)) from None
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="DFD Studio engine: distill, sample, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from .jobs import add_subcommands

    add_subcommands(sub)  # `worker` and `jobs`

    p = sub.add_parser("pretrain-teacher", help="train the built-in tiny teacher on the shapes world")
    p.add_argument("--out", required=True, help="output pipeline folder")
    p.add_argument("--steps", type=int, default=10000, help="training steps (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--save-every", type=int, default=0, help="also save every K steps (0: only at the end)")
    p.add_argument("--batch-size", type=int, default=32, help="clips per step (default 32)")
    p.add_argument("--pool-clips", type=int, default=16000, help="pre-rendered training clips (default 16000)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3)")
    p.add_argument("--warmup-steps", type=int, default=300, help="linear warm-up steps (default 300)")
    p.add_argument(
        "--lr-schedule",
        choices=["cosine", "constant"],
        default="cosine",
        help="cosine decay to 10%% over --steps, or constant (then every --save-every save equals a run of that length)",
    )
    p.add_argument(
        "--time-shift",
        type=float,
        default=1.0,
        help="train more at high noise: t = s*u/(1+(s-1)*u) for uniform u (default 1: every level equally)",
    )
    p.add_argument(
        "--balanced-detailed",
        type=float,
        default=0.0,
        help="fraction of each batch with every factor uniform and captioned in full: rare combinations "
        "as often as common ones, the same p(clip | detailed caption) (default 0)",
    )
    p.add_argument("--init", default=None, help="continue training this teacher folder (its sizes are kept)")
    p.set_defaults(func=cmd_pretrain_teacher)

    p = sub.add_parser("distill", help="distill a few-step student: DMD2, or DFD post-training of a DMD2 student")
    add_distill_arguments(p)
    p.add_argument("--out", required=True, help="output folder (LoRA, config, checkpoints, metrics)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("sample", help="generate videos from a prompt (one mp4 per seed)")
    p.add_argument("--base", default="shapes-tiny", help="shapes-tiny, a local diffusers folder, or a hub id")
    p.add_argument("--lora", default=None,
                   help="student: a LoRA folder (pytorch_lora_weights.safetensors) or a shipped one (dmd2, dfd, dmd2-continued)")
    p.add_argument("--prompt", required=True, help="what the video shows")
    p.add_argument("--seeds", default="1", help="a seed (3), a range (1-8) or a list (1,4,9); default 1")
    p.add_argument("--steps", type=int, default=50, help="sampling steps (default 50)")
    p.add_argument("--cfg", type=float, default=5.0, help="classifier-free guidance scale (default 5)")
    p.add_argument("--num-frames", type=int, default=None, help="frames, 4k+1 (default: the model's)")
    p.add_argument("--height", type=int, default=None, help="height in pixels (default: the model's)")
    p.add_argument("--width", type=int, default=None, help="width in pixels (default: the model's)")
    p.add_argument("--scale", type=int, default=1, help="upscale the written mp4 by this factor (default 1)")
    p.add_argument("--out", required=True, help="output folder for the mp4 files")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("train-recognizer", help="train the shapes world's attribute recognizer")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=cmd_train_recognizer)

    p = sub.add_parser("export-world", help="write shapes-world clips as mp4 + caption files (a data folder)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=200, help="number of clips (default 200)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--detailed-only", action="store_true", help="only detailed captions (the DFD regime)")
    p.set_defaults(func=cmd_export_world)

    p = sub.add_parser("evaluate", help="measure models on the shapes world (fidelity, diversity, modes, colour)")
    p.add_argument("--models", required=True,
                   help="comma list: real, teacher@50, teacher@4, teacher@N:cfg=S, dmd2, dfd, a job id, a LoRA folder")
    p.add_argument("--data-dir", default=None, help="studio data folder, to name students by job id")
    p.add_argument("--prompts", default="all", help="prompt set: detailed, underspecified or all (default all)")
    p.add_argument("--seeds", type=int, default=8, help="seeds per prompt (default 8)")
    p.add_argument("--base", default="shapes-tiny", help="base model (default shapes-tiny)")
    p.add_argument("--features", default=None,
                   help="also measure diversity with these encoders: clip:MODEL,dinov2:MODEL (a folder or hub id)")
    p.add_argument("--json", default=None, help="write the full result as JSON here")
    p.add_argument("--md", default=None, help="write the markdown table here")
    p.add_argument("--plot", default=None, help="write a PNG bar chart here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("study", help="the training-seed study: DMD2, the DMD2 control and DFD variants, mean +- std")
    p.add_argument("--out", default="runs/study", help="folder for the runs and evaluations (default runs/study)")
    p.add_argument("--seeds", default="0-2", help="training seeds: 0-2, or a list 0,1,2 (default 0-2)")
    p.add_argument("--base", default="shapes-tiny", help="a shapes-world teacher (default shapes-tiny)")
    p.add_argument("--dmd2-steps", type=int, default=1250, help="steps of the DMD2 stage (default 1250, the shipped one)")
    p.add_argument("--post-steps", type=int, default=200, help="steps of every post-training run (default 200)")
    p.add_argument("--variants", default=None, help="comma list of post-training variants (default: all of them)")
    p.add_argument("--eval-seeds", type=int, default=8, help="sampling seeds per prompt in the evaluation (default 8)")
    p.add_argument("--json", default=None, help="write mean/std per model and regime as JSON here")
    p.add_argument("--md", default=None, help="write the markdown tables here")
    p.add_argument("--plot", default=None, help="write a PNG with error bars here")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("bench", help="measure sampling speed (student vs teacher) or one training step")
    p.add_argument("what", choices=["sampling", "train-step"])
    p.add_argument("--base", default="shapes-tiny",
                   help="base model (default shapes-tiny); wan2.1-1.3b-random: Wan2.1-T2V-1.3B's config, random weights")
    p.add_argument("--lora", default=None, help="student LoRA for sampling (default: the shipped one)")
    p.add_argument("--videos", type=int, default=8, help="videos per sampling batch (default 8)")
    p.add_argument("--rounds", type=int, default=3,
                   help="sampling: interleaved student/teacher rounds after the warm-up (default 3; 1 at Wan's size on a GPU)")
    p.add_argument("--batch-size", type=int, default=None, help="train-step batch (default: the recipe's)")
    p.add_argument("--gradient-checkpointing", action="store_true", help="train-step: recompute activations")
    p.add_argument("--num-frames", type=int, default=None, help="video frames, 4k+1 (default: the model's)")
    p.add_argument("--height", type=int, default=None, help="video height (default: the model's)")
    p.add_argument("--width", type=int, default=None, help="video width (default: the model's)")
    p.add_argument("--json", default=None, help="also write the figures here")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.filename is None:  # not about a path the user gave: a bug or the system's, keep the traceback
            raise
        # A path that cannot be written or read (not a folder, no permission, disk full): one line, not a traceback.
        print(f"error: {err.strerror}: {err.filename}; check the path, its permissions and the free space", file=sys.stderr)
        return 1
