"""The base model box of Compare and Diversity, and the lists whose choices follow it (Compare's student
boxes, Diversity's models): a value the list no longer holds reaches the callback, which says what to pick,
instead of gradio refusing the whole request.

A base typed and Compare pressed at once send the old base's students while the new base's list is being
filled; gradio would answer with an 'Error' badge on every output and a passing toast."""

from __future__ import annotations

from abc import ABCMeta

import gradio as gr

from . import lineup


def _passing(base: type, name: str, preprocess) -> type:
    """`base` with its choice check left to the callback. Made with ABCMeta.__new__, past gradio's component
    metaclass, which would write a .pyi stub beside this file at import (the events and __init__ it prepares
    are inherited from `base`, already prepared); drawn by the frontend's own `base` (is_template)."""
    attrs = {
        "__module__": __name__,
        "__qualname__": name,
        "is_template": True,
        "preprocess": preprocess,
        "__doc__": f"{base.__name__} whose values reach the callback unchecked (lineup.find checks them).",
    }
    return ABCMeta.__new__(type(base), name, (base,), attrs)


StudentDropdown = _passing(gr.Dropdown, "StudentDropdown", lambda self, payload: payload)
ModelChecklist = _passing(gr.CheckboxGroup, "ModelChecklist", lambda self, payload: list(payload or []))


def base_dropdown(data_dir, base: str, access, tab: str, listed: str) -> gr.Dropdown:
    """The base model box of Compare and Diversity (`tab`): the bases a visitor may name, picked from the list
    or typed (a folder or hub id); picking one lists its `listed` ("students", "models") at once."""
    return gr.Dropdown(
        choices=[b for b in lineup.bases(data_dir, base) if access.allows_model(b)],
        value=base,
        allow_custom_value=True,
        filterable=True,
        label="Base model",
        scale=2,
        elem_id=f"{tab}-base",
        info=f"the teacher; pick one or type a folder or hub id: its {listed} are listed",
    )
