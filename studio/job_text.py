"""Job text for the Jobs tab's Markdown: text from a job (its error, a prompt, the Hub's message) shown plain, and
durations in words."""

from __future__ import annotations

import html
import math
import re

MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # with < > & as entities: no link, image, emphasis or tag


def plain(text) -> str:
    """Text shown as it is in a Markdown component: no link, image, emphasis or HTML made of a prompt (an
    image link in a prompt would otherwise be fetched by every viewer's browser)."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
