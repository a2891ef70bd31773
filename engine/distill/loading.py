"""Folder data loaded in the background (DistillConfig.data_workers): videos decoded in torch DataLoader
worker processes while the training process encodes them, and batches read from the cache by workers
ahead of the step that uses them. Both give exactly what the in-process path gives (tests/test_data_loading.py
compares them): the same window files with the same latents, the same batches for a seed, the same
sampler state in a checkpoint.

Why the work is split this way. Encoding a window needs the VAE, which lives on the training process's
device; a worker process cannot use that CUDA context (CUDA does not survive fork) and a VAE of its own
per worker would cost its weights again on the GPU, so workers only decode and resize frames (ffmpeg and
the centre-crop rule: CPU work, the slow part on a CPU host) and hand them back in shared memory, and the
training process encodes them one window at a time, as the in-process path does, so each latent is the
same computation. Reading a batch from the cache needs no model: workers read whole batches whose
indices the training process drew, so the random stream (and with it a checkpoint's data state) never
leaves the training process, and a state taken between steps is that of the batches consumed, not of
the ones read ahead.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from ..datasets.video_windows import VideoReadError, iter_windows
from .data import resize_crop

PREFETCH = 2  # items each worker keeps ready: DataLoader's default, bounded memory (a 480p window is ~100 MB)


def _as_is(item):
    """DataLoader's collate for items that are already what the caller wants (no batching, no conversion)."""
    return item


class _Decode(IterableDataset):
    """(job, window index, frames) for each window of each video job, then (job, -1, None, error or None)
    once the video is done; worker k of n takes jobs k, k + n, ... . A job: (video, fps, windows wanted,
    source fps) for the model's frames and size."""

    def __init__(
        self, jobs: list[tuple[Path, float, int | None, float | None]], num_frames: int, height: int, width: int
    ):
        self.jobs, self.num_frames, self.height, self.width = jobs, num_frames, height, width

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        first, step = (info.id, info.num_workers) if info is not None else (0, 1)
        for job in range(first, len(self.jobs), step):
            path, fps, wanted, source_fps = self.jobs[job]
            try:
                for window in iter_windows(
                    path,
                    self.num_frames,
                    fps,
                    wanted,
                    source_fps=source_fps,
                    fit=lambda frame: resize_crop(frame[None], self.height, self.width)[0],
                ):
                    yield job, window.index, torch.from_numpy(window.frames), None  # a tensor: shared memory
            except VideoReadError as err:
                yield job, -1, None, str(err)
            else:
                yield job, -1, None, None


def encode_ahead(
    encoder, clips: list[tuple[object, object, float]], workers: int, progress=None
) -> list[list[Path] | str]:
    """Each (clip, folder spec, fps)'s window files, as WindowEncoder.windows gives them, or the reason
    its video is skipped: what the cache lacks is decoded by `workers` processes and encoded here."""
    model = encoder.model
    plans = [encoder.plan(clip, spec, fps) for clip, spec, fps in clips]
    found: list[list[Path] | str | None] = [
        encoder.cached(cache, key, spec.windows_per_video) for (cache, key), (_, spec, _) in zip(plans, clips)
    ]
    todo = [i for i, files in enumerate(found) if files is None]
    done = len(clips) - len(todo)
    if progress:
        progress(done, len(clips))
    if not todo:
        return found
    jobs = [(clips[i][0].path, clips[i][2], clips[i][1].windows_per_video, clips[i][1].source_fps) for i in todo]
    written: dict[int, list[Path]] = {i: [] for i in todo}
    loader = DataLoader(
        _Decode(jobs, model.num_frames, model.height, model.width),
        batch_size=None,
        num_workers=min(workers, len(jobs)),
        collate_fn=_as_is,
        prefetch_factor=PREFETCH,
    )
    for job, index, frames, error in loader:
        i = todo[job]
        cache, key = plans[i]
        if index >= 0:
            written[i].append(encoder.encode_window(cache, key, index, frames.numpy()))
            continue
        if error is None:
            encoder.finish(cache, key, written[i], clips[i][1].windows_per_video)
            found[i] = written[i]
        else:  # as WindowEncoder.windows does: no half-encoded video is left behind
            for path in written[i]:
                path.unlink(missing_ok=True)
            found[i] = error
        done += 1
        if progress:
            progress(done, len(clips))
    return found


class _Batches(Dataset):
    """A batch read from the cache, by the entry indices the training process drew (the same function as
    the in-process path's)."""

    def __init__(self, entries: list[tuple[Path, Path, str]], text_len: int):
        self.entries, self.text_len = entries, text_len

    def __getitem__(self, picked: tuple[int, ...]):
        return picked, *read_batch(self.entries, picked, self.text_len)


def read_batch(entries: list[tuple[Path, Path, str]], picked, text_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(latents, caption embeddings padded to text_len) of the picked entries, read from their files (CPU)."""
    latents = torch.stack([torch.load(entries[i][0], weights_only=True) for i in picked])
    return latents, read_embeddings([entries[i][1] for i in picked], text_len)


def read_embeddings(files: list[Path], text_len: int) -> torch.Tensor:
    """Caption embeddings from their files, zero-padded to text_len as encode_prompts pads them (CPU)."""
    embeddings = [torch.load(path, weights_only=True) for path in files]
    cond = torch.zeros(len(files), text_len, embeddings[0].shape[-1])
    for row, emb in enumerate(embeddings):
        cond[row, : len(emb)] = emb
    return cond


class _Draws:
    """The sampler: n entry indices per batch from a copy of the training process's generator, with the
    generator's state after each draw queued so that the consumer can take it over batch by batch."""

    def __init__(self, rng: np.random.Generator, count: int, n: int, states: deque):
        self.rng, self.count, self.n, self.states = rng, count, n, states

    def __iter__(self):
        while True:
            picked = tuple(int(i) for i in self.rng.integers(0, self.count, size=self.n))
            self.states.append(self.rng.bit_generator.state)
            yield picked


class BatchesAhead:
    """Batches of n entries read by `workers` processes ahead of their use. `rng` is the data's generator:
    it is set to the state after each batch as that batch is taken, exactly as drawing in-process leaves
    it; after the generator is set from elsewhere (a resume, a batch drawn and put back) call restart()."""

    def __init__(self, entries: list[tuple[Path, Path, str]], text_len: int, workers: int, rng: np.random.Generator):
        self.dataset, self.workers, self.rng = _Batches(entries, text_len), workers, rng
        self.n: int | None = None
        self.states: deque = deque()
        self.batches = None

    def next(self, n: int) -> tuple[tuple[int, ...], torch.Tensor, torch.Tensor]:
        if self.batches is None or n != self.n:  # another batch size (the trainer's one-off draws): start again
            self.restart()
            self.n, draws = n, np.random.default_rng()
            draws.bit_generator.state = self.rng.bit_generator.state
            self.batches = iter(
                DataLoader(
                    self.dataset,
                    sampler=_Draws(draws, len(self.dataset.entries), n, self.states),
                    batch_size=None,
                    num_workers=self.workers,
                    collate_fn=_as_is,
                    prefetch_factor=PREFETCH,
                )
            )
        picked, latents, cond = next(self.batches)
        self.rng.bit_generator.state = self.states.popleft()
        return picked, latents, cond

    def restart(self) -> None:
        """Drop the batches read ahead (their workers stop); the next batch is drawn from the generator as it is."""
        self.batches = None  # the DataLoader iterator's finaliser stops its workers
        self.states.clear()
