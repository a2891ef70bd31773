"""`python -m engine sample`: one mp4 per seed from a base model, with a student LoRA or without, and
from a first frame (--image) for an image-to-video base."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config.sample import SampleConfig
from ..models.names import ModelError, check_model, check_video_shape, rope_positions, video_factors
from ..models.students import shipped_students
from .progress import CliError, bar, cli_error, seed_range


def student_folder(lora: str | None) -> str | None:
    """A LoRA folder as given, or a shipped student's folder by its name."""
    if not lora or Path(lora).is_dir():
        return lora

    shipped = {s.name: s.lora_dir for s in shipped_students()}
    if lora not in shipped:
        raise CliError(f"no student {lora!r}: give a LoRA folder or a shipped student ({', '.join(shipped)})")
    return str(shipped[lora])


def _checked_model(cfg):
    """Validate the settings and the model's name before torch and diffusers load (~10 s); then load it."""
    try:
        cfg.validate()
        _, folder = check_model(cfg.base)
        factors = video_factors(folder) if folder is not None else None
        if factors:
            check_video_shape(*factors, cfg.num_frames, cfg.height, cfg.width, rope_positions(folder))
        from ..models.base import load_base_model  # torch: only once the options are sound

        model = load_base_model(cfg.base)
        model.check_video_shape(
            cfg.num_frames or model.num_frames, cfg.height or model.height, cfg.width or model.width
        )
    except (ValueError, ModelError) as err:
        raise cli_error(err) from None
    return model


def cmd_sample(args) -> int:
    cfg = SampleConfig(
        base=args.base,
        prompt=args.prompt,
        seeds=seed_range(args.seeds),
        steps=args.steps,
        guidance=args.cfg,
        lora=student_folder(args.lora),
        num_frames=args.num_frames,
        height=args.height,
        width=args.width,
        scale=args.scale,
        image=args.image,
    )
    model = _checked_model(cfg)
    from ..generation.generate import generate  # torch: only once the options are sound

    shown = bar(f"sampling {len(cfg.seeds)} video(s)", cfg.steps)

    def progress(step, total):
        shown.total = total
        shown.update(step - shown.n)

    try:
        result = generate(cfg, args.out, model=model, progress=progress)
    except (ValueError, ModelError) as err:
        raise cli_error(err) from None
    finally:
        shown.close()
    for path in result.paths:
        print(path)
    from ..generation.causal_sampling import causal_layout  # torch: only once the options are sound

    each = "each per chunk (a causal student)" if causal_layout(cfg.lora) else "each"
    print(
        f"{len(result.paths)} video(s), {result.nfe} network evaluations {each}, {result.seconds:.2f} s",
        file=sys.stderr,
    )
    if result.first_frame_psnr:
        psnr = result.first_frame_psnr
        print(
            f"first frame against the given one: PSNR {sum(psnr) / len(psnr):.1f} dB mean, {min(psnr):.1f} dB lowest "
            "(decoded frames, before mp4 encoding)",
            file=sys.stderr,
        )
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("sample", help="generate videos from a prompt (one mp4 per seed)")
    p.add_argument("--base", default="shapes-tiny", help="shapes-tiny, a local diffusers folder, or a hub id")
    p.add_argument(
        "--lora",
        default=None,
        help="student: a LoRA folder (pytorch_lora_weights.safetensors) or a shipped one (dmd2, dfd, dmd2-continued)",
    )
    p.add_argument("--prompt", required=True, help="what the video shows")
    p.add_argument("--seeds", default="1", help="a seed (3), a range (1-8) or a list (1,4,9); default 1")
    p.add_argument(
        "--image",
        default=None,
        help="first frame for an image-to-video base: a PNG/JPG, or a video whose first frame is used",
    )
    p.add_argument("--steps", type=int, default=50, help="sampling steps (default 50)")
    p.add_argument("--cfg", type=float, default=5.0, help="classifier-free guidance scale (default 5)")
    p.add_argument("--num-frames", type=int, default=None, help="frames, 4k+1 (default: the model's)")
    p.add_argument("--height", type=int, default=None, help="height in pixels (default: the model's)")
    p.add_argument("--width", type=int, default=None, help="width in pixels (default: the model's)")
    p.add_argument("--scale", type=int, default=1, help="upscale the written mp4 by this factor (default 1)")
    p.add_argument("--out", required=True, help="output folder for the mp4 files")
    p.set_defaults(func=cmd_sample)
