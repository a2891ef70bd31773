"""CLIP and DINOv2 video features for the diversity metric, on tiny random configs of the real classes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.evaluation import metrics
from engine.evaluation.features import FeatureError, evenly_spaced, load_extractor


def save_tiny_clip(folder):
    """A tiny random CLIP model of the real class, text tower and tokenizer included (letters, digits and
    punctuation, no merges), as openai/clip-vit-large-patch14 is laid out."""
    import string

    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + string.digits + string.punctuation:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, projection_dim=16)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1, **small
        ),
        vision_config=dict(image_size=32, patch_size=8, **small),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_encoders(root):
    """Tiny random CLIP (whole: text and vision) and DINOv2 models of the real classes, saved as folders
    under root."""
    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    save_tiny_clip(root / "clip")
    small = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    Dinov2Model(Dinov2Config(**small)).save_pretrained(root / "dinov2")
    (root / "dinov2" / "preprocessor_config.json").write_text(
        json.dumps(
            {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "crop_size": {"height": 32, "width": 32}}
        )
    )
    return root


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    return save_tiny_encoders(tmp_path_factory.mktemp("encoders"))


def test_sixteen_evenly_spaced_frames_as_the_paper_takes_them():
    assert list(evenly_spaced(81)) == [0, 5, 11, 16, 21, 27, 32, 37, 43, 48, 53, 59, 64, 69, 75, 80]
    assert list(evenly_spaced(9)) == list(range(9))


@pytest.mark.parametrize("kind, dim", [("clip", 16), ("dinov2", 32)])
def test_video_features_are_one_pooled_vector_per_video_and_measure_diversity(encoders, kind, dim):
    extractor = load_extractor(f"{kind}:{encoders / kind}")
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 255, (3, 17, 48, 40, 3), dtype=np.uint8)
    feats = extractor.video_features(clips)
    assert feats.shape == (3, dim) and np.isfinite(feats).all()
    assert np.allclose(feats, extractor.video_features(clips), atol=1e-6)  # deterministic
    same = extractor.video_features(np.repeat(clips[:1], 4, axis=0))
    assert metrics.diversity(same) == pytest.approx(0.0, abs=1e-6)
    assert metrics.diversity(feats) > 0


def test_bad_extractor_specs_are_explained(tmp_path):
    with pytest.raises(FeatureError, match="write clip:MODEL or dinov2:MODEL"):
        load_extractor("clip")
    with pytest.raises(FeatureError, match="unknown feature extractor 'siglip'"):
        load_extractor("siglip:x")
    with pytest.raises(FeatureError, match="could not load dinov2 encoder"):
        load_extractor(f"dinov2:{tmp_path / 'missing'}")


def test_evaluate_reports_encoder_diversity_beside_the_recognizers(encoders):
    from engine.evaluation.evaluate import evaluate, to_markdown

    result = evaluate(["real"], "detailed", 2, features=[f"dinov2:{encoders / 'dinov2'}"])
    real = result["models"]["real"]
    assert result["features"] == ["recognizer", f"dinov2:{encoders / 'dinov2'}"]
    assert (
        0 < real["diversity_dinov2"] <= 2
        and real["by_regime"]["detailed"]["diversity_dinov2"] == real["diversity_dinov2"]
    )
    assert "| diversity dinov2 |" in to_markdown(result)


# facebook/dinov2-large's preprocessor_config.json on the Hub (the values that decide the input)
HUB_DINOV2_PROCESSOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "BitImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 256},
}


def _in_hub_cache(cache, repo_id: str, files_from) -> None:
    """Lay `files_from`'s files out as the Hub's cache holds a downloaded repo (offline reads find them)."""
    import shutil

    commit = "0" * 40
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(files_from, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_one_dinov2_model_gives_the_same_features_however_it_is_named(tmp_path, monkeypatch):
    """A folder with the hub's processor file, the same weights without it, and the hub id (from the
    cache) resize and crop alike: 256 then 224, not the config's 518."""
    import huggingface_hub
    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    net = Dinov2Model(
        Dinov2Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=518,
            patch_size=14,
        )
    )
    net.save_pretrained(tmp_path / "bare")
    net.save_pretrained(tmp_path / "snapshot")
    (tmp_path / "snapshot" / "preprocessor_config.json").write_text(json.dumps(HUB_DINOV2_PROCESSOR))
    _in_hub_cache(tmp_path / "hub", "facebook/dinov2-tiny-test", tmp_path / "snapshot")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    clips = np.random.default_rng(1).integers(0, 255, (2, 5, 120, 200, 3), dtype=np.uint8)
    named = [f"dinov2:{tmp_path / 'bare'}", f"dinov2:{tmp_path / 'snapshot'}", "dinov2:facebook/dinov2-tiny-test"]
    extractors = [load_extractor(spec) for spec in named]
    assert [(x.resize, x.size) for x in extractors] == [(256, 224)] * 3
    features = [x.video_features(clips) for x in extractors]
    assert np.allclose(features[0], features[1], atol=1e-5) and np.allclose(features[0], features[2], atol=1e-5)


def test_prompt_adherence_is_a_cosine_per_clip_and_needs_a_whole_clip_model(encoders, tmp_path):
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from engine.evaluation.adherence import ClipAdherence

    scorer = ClipAdherence(str(encoders / "clip"))
    clips = np.random.default_rng(2).integers(0, 255, (2, 9, 40, 48, 3), dtype=np.uint8)
    scores = scorer.scores(clips, "a red circle")
    assert len(scores) == 2 and all(-1 <= s <= 1 for s in scores)
    assert scores == pytest.approx(scorer.scores(clips, "a red circle"), abs=1e-6)
    assert scores != pytest.approx(scorer.scores(clips, "a dog, 7"), abs=1e-6)  # the prompt matters
    torch.manual_seed(0)
    CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            projection_dim=16,
        )
    ).save_pretrained(tmp_path / "vision-only")
    with pytest.raises(FeatureError, match="prompt adherence needs a whole CLIP model"):
        ClipAdherence(str(tmp_path / "vision-only"))
