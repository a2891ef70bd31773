"""Which law a shapes image-to-video base's first frames come from (world.FRAME_LAWS), read from its
dfd_studio.json without torch: the law it was trained on is the one its evaluation draws frames from and whose
exact motion posterior is its truth."""

from __future__ import annotations

import json

from ..models.names import STUDIO_META, ModelError, resolve_model
from ..shapes import world


def i2v_frames_of(base: str) -> str | None:
    """The frame law of a shapes base trained for image-to-video ("edge" when its record names none: every
    such base made before the centre law), None for any other base."""
    try:
        _, folder = resolve_model(base)
    except ModelError:
        return None
    meta_path = folder / STUDIO_META if folder is not None else None
    if meta_path is None or not meta_path.is_file():
        return None
    try:
        return world.frame_law_of(json.loads(meta_path.read_text()))
    except ValueError as err:
        raise ValueError(f"{meta_path}: {err}") from None
