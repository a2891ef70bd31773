"""Know before you run: peak device memory, host memory and time of each stage of a distillation run at
real size, computed on fake tensors (no GPU, no weights, no compute). `make_plan(PlanSpec(...))`."""

from .spec import BASES, PlanError, PlanSpec

__all__ = ["BASES", "PlanError", "PlanSpec", "make_plan"]


def make_plan(spec, only=None):
    from .planner import make_plan as _make_plan  # torch: `engine.plan` stays light for the CLI's options

    return _make_plan(spec, only)
