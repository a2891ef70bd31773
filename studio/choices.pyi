"""Lists whose choices follow the base model (Compare's student boxes, Diversity's models): a value the list
no longer holds reaches the callback, which says what to pick, instead of gradio refusing the whole request.

A base typed and Compare pressed at once send the old base's students while the new base's list is being
filled; gradio would answer with an 'Error' badge on every output and a passing toast."""

from __future__ import annotations

import gradio as gr

from gradio.events import Dependency

class StudentDropdown(gr.Dropdown):
    is_template = True  # drawn by the frontend's own dropdown

    def preprocess(self, payload):
        return payload
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component  # a key, checked by lineup.find when the request is planned


class ModelChecklist(gr.CheckboxGroup):
    is_template = True  # drawn by the frontend's own checkbox group

    def preprocess(self, payload):
        return list(payload or [])
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component  # keys, checked by lineup.find when the request is planned