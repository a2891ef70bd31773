"""The text encoder is freed before the first pass over the clips: the data encodes every caption first, the
trainer releases the encoder, and only then is any clip encoded (the plan's latent-encoding stage holds no
text encoder). The preview embeddings then come from the text cache, equal to a fresh encode."""

from __future__ import annotations

import numpy as np
import torch

from engine.media.video import write_mp4


def _folder(folder, n):
    folder.mkdir(parents=True)
    for i in range(n):
        write_mp4(folder / f"clip{i}.mp4", np.full((24, 48, 64, 3), 20 * i, dtype=np.uint8), fps=8)
        (folder / f"clip{i}.txt").write_text(f"a clip of shade {i}")
    return folder


def test_the_text_encoder_is_gone_before_the_first_clip_is_encoded(tmp_path, mini_teacher_dir, monkeypatch):
    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Distiller
    from engine.models.base import BaseModel, load_base_model

    seen = []  # ("prompts" | "clip", text encoder present)
    encode_video, encode_prompts = BaseModel.encode_video, BaseModel.encode_prompts

    def spy_video(self, frames):
        seen.append(("clip", self.pipe.text_encoder is not None))
        return encode_video(self, frames)

    def spy_prompts(self, prompts):
        seen.append(("prompts", self.pipe.text_encoder is not None))
        return encode_prompts(self, prompts)

    monkeypatch.setattr(BaseModel, "encode_video", spy_video)
    monkeypatch.setattr(BaseModel, "encode_prompts", spy_prompts)
    cfg = DistillConfig(
        base=str(mini_teacher_dir),
        data=str(_folder(tmp_path / "data", 3)),
        steps=1,
        batch_size=2,
        student_update_freq=2,
        lora_rank=4,
        cache_dir=str(tmp_path / "cache"),
    )
    distiller = Distiller(cfg, tmp_path / "run")
    clips = [present for kind, present in seen if kind == "clip"]
    assert len(clips) == 3 and not any(clips), seen  # every window encoded with the text encoder gone
    first_clip = seen.index(("clip", False))
    assert seen[:first_clip] and all(kind == "prompts" and present for kind, present in seen[:first_clip]), seen
    assert distiller.model.pipe.text_encoder is None
    distiller.train()  # the run's previews need no text encoder: their embeddings come from the cache

    monkeypatch.setattr(BaseModel, "encode_prompts", encode_prompts)
    fresh = load_base_model(str(mini_teacher_dir), device="cpu", dtype=torch.float32)
    fresh.set_video_shape(distiller.model.num_frames, distiller.model.height, distiller.model.width)
    expected = fresh.encode_prompts(distiller.preview_prompts)
    assert len(distiller.preview_prompts) == 2
    torch.testing.assert_close(distiller.preview_cond, expected)
