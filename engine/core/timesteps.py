"""The student's times: the paper's schedule and the one rule every t_list obeys, shared by the configs
(which refuse a bad list before anything loads) and the samplers. Torch-free."""

from __future__ import annotations

from collections.abc import Sequence

# The paper's 4-step schedule (FastGen's Wan recipe); 2-step: [0.999, 0.908, 0.0].
PAPER_T_LIST = (0.999, 0.937, 0.833, 0.624, 0.0)


def t_list_problem(t_list: Sequence[float]) -> str | None:
    """What is wrong with a student's t_list (the sentence after its name), or None: it must decrease
    strictly from at most 1 (pure noise) to exactly 0 (the clean sample), with at least one step."""
    t = [float(v) for v in t_list]
    if len(t) < 2 or t[-1] != 0.0 or any(a <= b for a, b in zip(t, t[1:])) or t[0] > 1.0:
        return f"must decrease strictly from at most 1 to exactly 0, got {t}"
    return None


def check_t_list(t_list: Sequence[float]) -> None:
    """Raise ValueError naming t_list when `t_list_problem` finds something."""
    problem = t_list_problem(t_list)
    if problem is not None:
        raise ValueError(f"t_list {problem}")
