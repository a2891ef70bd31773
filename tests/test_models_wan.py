"""The tiny random Wan2.1 of the real classes as a base: it samples through the same command as the built-in
teacher, its video shape is checked from the folder's configs as the loaded model checks it, and its VAE
decodes one video at a time in tiles and encodes whole."""

import numpy as np
import pytest
import torch

from conftest import run_engine
from engine.media.video import read_mp4
from engine.models.base import BUILTIN_MODELS, ModelError, load_base_model


def test_tiny_random_wan_of_the_real_classes_samples_through_the_same_command(tiny_wan_dir, tmp_path):
    result = run_engine(
        "sample",
        "--base",
        str(tiny_wan_dir),
        "--prompt",
        "a red circle",
        "--seeds",
        "5",
        "--steps",
        "2",
        "--num-frames",
        "9",
        "--height",
        "32",
        "--width",
        "32",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    (path,) = result.stdout.split()
    assert read_mp4(path).shape == (9, 32, 32, 3)


def test_video_shape_is_checked_from_the_folders_configs_as_the_loaded_model_checks_it(tmp_path):
    from engine.models.names import check_video_shape, video_factors

    factors = video_factors(BUILTIN_MODELS["shapes-tiny"])
    model = load_base_model("shapes-tiny", device="cpu")
    assert (
        factors
        == (
            model.vae.config.scale_factor_temporal,
            model.vae.config.scale_factor_spatial * model.transformer.config.patch_size[1],
        )
        == (4, 16)
    )
    check_video_shape(*factors, 17, 64, None)  # None: not given, not checked
    with pytest.raises(ModelError, match="positive multiples of 16; got width 66$"):
        check_video_shape(*factors, None, None, 66)
    with pytest.raises(ModelError, match=r"num_frames must be 4k\+1 \(e.g. 17\); got 16"):
        model.check_video_shape(16, 64, 64)
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{}")  # an older config without the factors: left to the model
    assert video_factors(tmp_path) is None


def test_wan_vae_decodes_one_video_at_a_time_in_tiles_and_encodes_whole(tiny_wan_dir):
    model = load_base_model(str(tiny_wan_dir))
    vae = model.vae
    torch.manual_seed(0)
    latents = torch.randn(2, vae.config.z_dim, 2, 34, 34)  # 5 frames of 272 px: over the 256-px tile
    frames = model.decode(latents)
    assert frames.shape == (2, 5, 272, 272, 3) and frames.dtype == np.uint8
    assert not vae.use_tiling  # encoding (training data) stays untiled
    raw = model.denormalize_latents(latents)
    with torch.no_grad():
        tiled = [vae.tiled_decode(z[None], return_dict=False)[0] for z in raw]
        whole = vae.decode(raw, return_dict=False)[0]
    from engine.shapes.autoencoder import tensor_to_frames

    assert np.array_equal(frames, np.concatenate([tensor_to_frames(v) for v in tiled]))
    assert not np.array_equal(frames, tensor_to_frames(whole))  # the tiles really were used
