"""What the Compare and Diversity tab tests share: the tiny random Wan pipeline at 5 frames of 32 x 32
(`small_wan`, a module fixture), a base the web process leaves to the worker."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def small_wan(tiny_wan_dir, tmp_path_factory):
    """The tiny random Wan pipeline at 5 frames of 32 x 32, the size its dfd_studio.json names."""
    import json
    import shutil

    folder = tmp_path_factory.mktemp("small-wan") / "pipe"
    shutil.copytree(tiny_wan_dir, folder)
    (folder / "dfd_studio.json").write_text(json.dumps({"num_frames": 5, "height": 32, "width": 32, "fps": 16}))
    return folder
