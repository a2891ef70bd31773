"""`python -m engine publish`: a student's LoRA, model card and sample videos pushed to the Hugging Face
Hub (or written to a zip with --export), as the Publish tab does.

The card is made from the student folder (lora_config.json, distill_config.json, its samples/ videos of
the last training step, each captioned with its prompt when the run recorded them in samples/previews.json)
and, with --eval, the JSON that `engine evaluate --json` wrote. The token comes from --token, HF_TOKEN or
the login `hf auth login` stored; it is only handed to huggingface_hub."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..hub import publish
from ..hub.card import training_previews
from ..hub.publish import DTYPES, LICENSES
from ..models.students import student_t_list
from .progress import CliError
from .sample import student_folder


def add_parsers(sub) -> None:
    p = sub.add_parser("publish", help="push a student LoRA with its model card and samples to the Hugging Face Hub")
    p.add_argument(
        "--lora", required=True, help="the student: a LoRA folder or a shipped one (dmd2, dfd, dmd2-continued)"
    )
    p.add_argument("--repo", required=True, help="the model repo to create or update, as your-name/model-name")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument(
        "--export",
        default=None,
        metavar="ZIP",
        help="write the folder a push would upload to this zip instead of pushing",
    )
    p.add_argument(
        "--dtype",
        default="fp32",
        choices=DTYPES,
        help="dtype of the published LoRA weights (default fp32, as trained; bf16/fp16 halve the files)",
    )
    p.add_argument("--license", default="apache-2.0", choices=LICENSES, help="the card's license (default apache-2.0)")
    p.add_argument(
        "--eval", default=None, metavar="JSON", help="an `engine evaluate --json` result to show on the card"
    )
    p.add_argument(
        "--token", default=None, help="a Hugging Face write token (default: HF_TOKEN, then your stored login)"
    )
    p.set_defaults(func=cmd_publish)


def _evaluation_table(path: str | None) -> str:
    if not path:
        return ""
    try:
        result = json.loads(Path(path).read_text())
        from ..evaluation.evaluate import to_markdown  # numpy: only when an evaluation is attached

        return to_markdown(result)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CliError(f"--eval {path}: not an `engine evaluate --json` result ({type(err).__name__}: {err})") from None


def _card(lora_dir: Path, args, samples: list[tuple[Path, str]]) -> str:
    config = (
        json.loads((lora_dir / "lora_config.json").read_text()) if (lora_dir / "lora_config.json").is_file() else {}
    )
    if not config.get("base") or not config.get("method"):
        raise CliError(
            f"{lora_dir}/lora_config.json does not say the student's base and method; "
            "publish a folder written by `python -m engine distill`"
        )
    return publish.model_card(
        publish.CardInfo(
            repo_id=args.repo,
            base=config["base"],
            method=config["method"],
            **publish.training_record(lora_dir),
            t_list=student_t_list(lora_dir),
            samples=[(f"samples/{p.name}", caption) for p, caption in samples],
            license=args.license,
            source=f"`python -m engine publish` of `{lora_dir.name}`",
            evaluation=_evaluation_table(args.eval),
            dtype=args.dtype,
        )
    )


def cmd_publish(args) -> int:
    try:
        args.repo = publish.check_repo_id(args.repo)
    except ValueError as err:
        raise CliError(f"--repo: {err}") from None
    lora_dir = Path(student_folder(args.lora))
    if not (lora_dir / publish.LORA_FILE).is_file():
        raise CliError(f"--lora {args.lora}: no {publish.LORA_FILE} there; give a finished student's folder")

    samples = training_previews(lora_dir)
    card = _card(lora_dir, args, samples)
    with tempfile.TemporaryDirectory(prefix="dfd-publish-") as tmp:
        folder = publish.stage_folder(
            lora_dir,
            Path(tmp) / args.repo.split("/")[-1],
            card,
            [(p, f"samples/{p.name}") for p, _ in samples],
            dtype=args.dtype,
        )
        if args.export:
            archive = publish.export_zip(folder, args.export)
            print(
                f"wrote {archive}: the model card, the LoRA ({args.dtype}), the ComfyUI file and "
                f"{len(samples)} sample videos"
            )
            return 0
        token, source = publish.pick_token(args.token, None, cached_login=True)
        if token is None:
            raise CliError(source)
        source = "--token" if args.token and args.token.strip() else source
        try:
            url = publish.push_folder(folder, args.repo, token, private=args.private, token_source=source)
        except ValueError as err:
            raise CliError(str(err)) from None
    print(f"pushed the LoRA ({args.dtype}), model card and {len(samples)} sample videos to {url} (token from {source})")
    return 0
