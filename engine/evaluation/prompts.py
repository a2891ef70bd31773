"""The prompts an evaluation samples, and the seeds of each: a built-in set of the shapes world's captions
(detailed, underspecified, all) or a file of the user's own.

A prompt file is either plain text, one prompt per line (blank lines and lines starting with # are
skipped), or JSONL (a .jsonl name), one object per line: {"prompt": "...", "seeds": [1, 2, 3],
"image": "frames/cat.png"} with "seeds" and "image" optional. "image" is the first frame an image-to-video base
samples the prompt from, a path relative to the prompt file (user_frames.py). A prompt without its own seeds
gets the evaluation's seeds 1..N, the same for every model, so every model starts from the same initial noise.
Torch-free: the command line checks the file before it loads any model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config.seeds import MAX_SEEDS

BUILT_IN = ("detailed", "underspecified", "all")


@dataclass(frozen=True)
class EvalPrompt:
    text: str
    seeds: tuple[int, ...] | None = None  # None: the evaluation's seeds 1..N
    image: str | None = None  # the prompt's first frame (an image-to-video base), resolved against the file


def _checked_seeds(value, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise ValueError(f'{where}: "seeds" must be a list of whole numbers of 0 or more, e.g. [1, 2, 3]')
    if not 2 <= len(value) <= MAX_SEEDS or len(set(value)) != len(value):
        raise ValueError(
            f'{where}: "seeds" needs 2 to {MAX_SEEDS} different seeds (diversity compares pairs), got {value}'
        )
    return tuple(value)


def _jsonl_line(line: str, where: str, folder: Path) -> EvalPrompt:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(
            f'{where} is not JSON ({err.msg}); write one object per line: {{"prompt": "...", "seeds": [1, 2]}}'
        ) from None
    if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
        raise ValueError(f'{where} has no "prompt" text; write {{"prompt": "...", "seeds": [1, 2]}}')
    unknown = sorted(set(row) - {"prompt", "seeds", "image"})
    if unknown:
        raise ValueError(f"{where} has keys {unknown} that an evaluation does not read; keep prompt, seeds, image")
    seeds = _checked_seeds(row["seeds"], where) if "seeds" in row else None
    image = row.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise ValueError(f'{where}: "image" must be the path of a PNG/JPG (relative to the prompt file), e.g. "a.png"')
    image = str(folder / Path(image.strip()).expanduser()) if image is not None else None
    return EvalPrompt(" ".join(row["prompt"].split()), seeds, image)


def read_prompt_file(path: str | Path) -> list[EvalPrompt]:
    """The prompts of a text or JSONL file; ValueError naming the file and line of anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"no prompt file at {path}; give a text file with one prompt per line, a .jsonl file, "
            f"or one of the built-in sets ({', '.join(BUILT_IN)})"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    prompts, seen = [], {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path.name} line {n}"
        jsonl = path.suffix.lower() == ".jsonl"
        item = _jsonl_line(line, where, path.parent) if jsonl else EvalPrompt(" ".join(line.split()))
        if item.text in seen:
            raise ValueError(
                f"{where} repeats the prompt of line {seen[item.text]}; give each prompt once "
                "(more samples of it: more seeds)"
            )
        seen[item.text] = n
        prompts.append(item)
    if not prompts:
        raise ValueError(f"{path} holds no prompt; write one prompt per line")
    return prompts


def read_prompts(source: str, shapes_world: bool) -> list[EvalPrompt]:
    """The prompts `source` names: a built-in set (shapes-world bases only) or a prompt file."""
    if source in BUILT_IN:
        if not shapes_world:
            raise ValueError(
                f"the built-in prompt set {source!r} holds captions of the shapes world; for this "
                "base give a file of your own prompts (one per line, or JSONL)"
            )
        from ..shapes import world  # numpy: only for the built-in prompts, so the command line starts fast

        return [EvalPrompt(p) for p in world.prompt_set(source)]
    return read_prompt_file(source)


def seeds_of(prompt: EvalPrompt, default: list[int]) -> list[int]:
    return list(prompt.seeds) if prompt.seeds is not None else list(default)
