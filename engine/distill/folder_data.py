"""The user's videos as distillation data: each video's windows encoded once to latents on disk, each
caption's embedding once, and batches read from those files as they are drawn, so the memory a run
needs does not grow with the number of clips (the data set object holds paths and captions only).

The cache lives in the run's cache_dir (the studio's: its data dir's cache/), or else in each data
folder's .dfd_cache: one file per window, `<key>-wNNN.pt`, and a manifest `<key>.json` saying how many
windows the video gave, where the key digests the video's bytes, the base model and the window settings
(frames, size, fps); one file per caption, `text-<digest>.pt`, the embedding without its zero padding.
Keys depend on content only, so folders sharing one cache share only identical entries. Files are written
atomically, so processes sharing a folder (multi-GPU runs) never read half a file. Skipped files and cut
captions are in `report`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..datasets.dataset_config import DataSpec, FolderSpec, data_spec
from ..datasets.sources import CACHE_DIR, Clip, DataError, list_folder
from ..datasets.video_windows import VideoReadError, iter_windows
from .data import RealBatch, resize_crop
from .loading import BatchesAhead, encode_ahead, read_batch, read_embeddings


@dataclass
class DataReport:
    """What a folder data set holds and what it left out, for the run's log and data.json."""

    source: str
    fps: list[float] = field(default_factory=list)  # the window rates used (one per distinct folder setting)
    num_frames: int = 0
    videos_used: int = 0
    windows: int = 0  # distinct training windows
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (file, message)

    def lines(self) -> list[str]:
        rates = ", ".join(f"{f:g}" for f in self.fps)
        out = [
            f"data {self.source}: {self.windows} windows of {self.num_frames} frames at {rates} fps from "
            f"{self.videos_used} videos; {len(self.skipped)} files skipped"
        ]
        out += [f"skipped {name}: {why}" for name, why in self.skipped]
        out += [f"warning {name}: {message}" for name, message in self.warnings]
        return out

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "fps": self.fps,
            "num_frames": self.num_frames,
            "videos_used": self.videos_used,
            "windows": self.windows,
            "skipped": [list(s) for s in self.skipped],
            "warnings": [list(w) for w in self.warnings],
        }


def _save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class WindowEncoder:
    """Video windows -> latent files in the folder's cache (encoded once, then found by key)."""

    def __init__(self, model, cache_dir: Path | None = None):
        self.model = model
        self.model_key = f"{model.source}|{model.num_frames}x{model.height}x{model.width}"
        if getattr(model, "tiled_encode", False):  # tiled latents differ at the seams: cached apart
            self.model_key += "|tiled"
        self.cache_dir = cache_dir

    def plan(self, clip: Clip, spec: FolderSpec, fps: float) -> tuple[Path, str]:
        """(the cache folder, the key) of the clip's windows under these settings."""
        settings = f"{self.model_key}|{fps:g}|{spec.source_fps}"
        key = hashlib.sha1((_file_digest(clip.path) + settings).encode()).hexdigest()[:20]
        return cache_folder(clip.path.parent, self.cache_dir), key

    def cached(self, cache: Path, key: str, wanted: int | None) -> list[Path] | None:
        """The window files the cache already holds for `wanted` windows (None: all), or None."""
        manifest = cache / f"{key}.json"
        if manifest.is_file():
            known = json.loads(manifest.read_text())
            count = known["windows"] if wanted is None else min(wanted, known["windows"])
            files = [cache / f"{key}-w{j:03d}.pt" for j in range(count)]
            if (known["complete"] or (wanted is not None and known["windows"] >= wanted)) and all(
                p.is_file() for p in files
            ):
                return files
        return None

    def encode_window(self, cache: Path, key: str, index: int, frames: np.ndarray) -> Path:
        """Window `index` of the clip, frames at the model's size, encoded into its file."""
        path = cache / f"{key}-w{index:03d}.pt"
        _save(self.model.encode_video(frames[None])[0].float().cpu(), path)
        return path

    def finish(self, cache: Path, key: str, files: list[Path], wanted: int | None) -> None:
        """Record how many windows the clip gave, once they are all written."""
        complete = wanted is None or len(files) < wanted  # the video ended before the windows asked for
        manifest = cache / f"{key}.json"
        tmp = manifest.with_name(f".{manifest.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"windows": len(files), "complete": complete}))
        os.replace(tmp, manifest)

    def windows(self, clip: Clip, spec: FolderSpec, fps: float) -> list[Path]:
        """The clip's window files (encoding what the cache lacks); raises VideoReadError."""
        cache, key = self.plan(clip, spec, fps)
        wanted = spec.windows_per_video
        found = self.cached(cache, key, wanted)
        if found is not None:
            return found
        m = self.model
        files = []
        try:
            for window in iter_windows(
                clip.path,
                m.num_frames,
                fps,
                wanted,
                source_fps=spec.source_fps,
                fit=lambda frame: resize_crop(frame[None], m.height, m.width)[0],
            ):
                files.append(self.encode_window(cache, key, window.index, window.frames))
        except VideoReadError:
            for path in files:
                path.unlink(missing_ok=True)
            raise
        self.finish(cache, key, files, wanted)
        return files


class TextCache:
    """Caption -> embedding file (without the zero padding past the prompt), encoded in batches."""

    def __init__(self, model, cache_dir: Path | None = None):
        self.model = model
        self.key = f"{model.source}|{model.text_len}"
        self.cache_dir = cache_dir

    def path(self, folder: Path, caption: str) -> Path:
        root = self.cache_dir if self.cache_dir is not None else folder / CACHE_DIR
        return root / f"text-{hashlib.sha1((self.key + caption).encode()).hexdigest()[:20]}.pt"

    def token_count(self, caption: str) -> int:
        return len(self.model.pipe.tokenizer(caption, add_special_tokens=True).input_ids)

    def encode_missing(self, wanted: dict[Path, str], progress=None) -> None:
        todo = [(p, c) for p, c in wanted.items() if not p.is_file()]
        for start in range(0, len(todo), 64):
            chunk = todo[start : start + 64]
            emb = self.model.encode_prompts([c for _, c in chunk]).float().cpu()
            for (path, caption), e in zip(chunk, emb):
                n = min(self.token_count(caption), self.model.text_len)
                path.parent.mkdir(parents=True, exist_ok=True)
                _save(e[:n].clone(), path)


def cache_folder(data_folder: Path, cache_dir: Path | None) -> Path:
    """Where a data folder's windows are cached (made if missing): cache_dir, else the folder's .dfd_cache."""
    cache = Path(cache_dir) if cache_dir is not None else data_folder / CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    return cache


class FolderData:
    """Windows of the user's videos with their captions' embeddings, drawn in random batches.

    Holds (window file, caption file, caption) per drawable entry; a folder's `repeats` lists its
    windows that many times. Raises DataError when fewer than `min_clips` windows are usable.
    windows_per_video: the run's (0: every whole window), for folders whose data-set config sets none;
    cache_dir: where encodings are kept (None: each data folder's .dfd_cache); workers: processes that
    decode videos and read batches ahead (0: none; engine/distill/loading.py), the same data either way."""

    def __init__(
        self,
        spec: str | Path | DataSpec,
        model,
        seed: int = 0,
        progress=None,
        min_clips: int = 1,
        windows_per_video: int = 1,
        cache_dir: str | Path | None = None,
        workers: int = 0,
        text_done=None,
    ):
        spec = spec if isinstance(spec, DataSpec) else data_spec(spec, windows_per_video)
        self.model = model
        self.report = DataReport(source=spec.source, num_frames=model.num_frames)
        cache = Path(cache_dir).expanduser() if cache_dir else None
        encoder, texts = WindowEncoder(model, cache), TextCache(model, cache)
        self.entries: list[tuple[Path, Path, str]] = []
        self.text_files: dict[str, Path] = {}  # caption -> its embedding's file
        listings = [(fs, list_folder(fs.path, fs.captions, fs.caption)) for fs in spec.folders]
        # Every listed caption is encoded before any clip, so that the text encoder can be freed before the
        # first pass over the clips (the run's peak otherwise: UMT5-XXL beside the VAE, docs/distillation.md).
        texts.encode_missing({texts.path(c.path.parent, c.caption): c.caption for _, ls in listings for c in ls.clips})
        if text_done is not None:
            text_done()
        total, done = sum(len(listing.clips) for _, listing in listings), 0
        ahead = iter(
            encode_ahead(
                encoder,
                [(clip, fs, float(fs.fps or model.fps)) for fs, listing in listings for clip in listing.clips],
                workers,
                progress,
            )
            if workers
            else ()
        )
        for fs, listing in listings:
            label = fs.label if len(spec.folders) > 1 else ""
            self.report.skipped += [(label + name, why) for name, why in listing.skipped]
            fps = float(fs.fps or model.fps)
            if fps not in self.report.fps:
                self.report.fps.append(fps)
            for clip in listing.clips:
                done += 1
                try:
                    windows = next(ahead) if workers else encoder.windows(clip, fs, fps)
                    if isinstance(windows, str):  # a worker could not decode it: the in-process reason
                        raise VideoReadError(windows)
                except VideoReadError as err:
                    self.report.skipped.append((label + clip.path.name, str(err)))
                    windows = None
                if progress and not workers:  # once the clip is encoded (encode_ahead reports its own)
                    progress(done, total)
                if windows is None:
                    continue
                tokens = texts.token_count(clip.caption)
                if tokens > model.text_len:
                    source = clip.path.name if clip.caption_source == "caption:" else clip.caption_source
                    self.report.warnings.append(
                        (
                            label + source,
                            f"the caption of {clip.path.name} is {tokens} tokens; "
                            f"the text encoder reads the first {model.text_len}, the rest is cut",
                        )
                    )
                text_file = texts.path(clip.path.parent, clip.caption)
                self.text_files[clip.caption] = text_file
                self.report.videos_used += 1
                self.report.windows += len(windows)
                self.entries += [(w, text_file, clip.caption) for w in windows] * fs.repeats
        self._check_enough(spec, min_clips)
        self.captions = [caption for _, _, caption in self.entries]
        self.rng = np.random.default_rng(seed)
        self.ahead = BatchesAhead(self.entries, model.text_len, workers, self.rng) if workers else None

    def _check_enough(self, spec: DataSpec, min_clips: int) -> None:
        found = self.report.windows
        if found >= max(min_clips, 1):
            return
        skipped = self.report.skipped
        reasons = "; ".join(f"{n}: {r}" for n, r in skipped[:3]) + (
            f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        )
        if not skipped and not found:
            raise DataError(
                f"no captioned videos in {spec.source}: put a .txt caption beside each video, "
                "or a captions.csv (file,caption) or captions.jsonl"
            )
        where = (
            f"no usable clips in {spec.source}"
            if not found
            else f"found {found} usable clips in {spec.source}, a batch needs {min_clips}"
        )
        raise DataError(
            f"{where} ({len(skipped)} skipped: {reasons}); add clips" + (" or lower the batch size" if found else "")
        )

    def batch(self, n: int) -> RealBatch:
        """n entries drawn with replacement, read from their files (the only tensors this object makes)."""
        if self.ahead is not None:
            idx, latents, cond = self.ahead.next(n)
        else:
            idx = self.rng.integers(0, len(self.entries), size=n)
            latents, cond = read_batch(self.entries, idx, self.model.text_len)
        return RealBatch(
            latents=latents.to(self.model.device, torch.float32),
            cond=cond.to(self.model.device, self.model.dtype),
            captions=[self.entries[i][2] for i in idx],
        )

    def prompt_embeddings(self, captions: list[str]) -> torch.Tensor:
        """The cached embeddings of some of the data's captions, padded as encode_prompts pads them (the text
        encoder may be gone by now)."""
        cond = read_embeddings([self.text_files[c] for c in captions], self.model.text_len)
        return cond.to(self.model.device, self.model.dtype)

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state}  # with workers: that of the batches taken, not read ahead

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        if self.ahead is not None:
            self.ahead.restart()
