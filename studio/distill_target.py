"""The Distill tab's run target: "this machine" (the studio's own worker queue) or "HF Jobs" (the Hub's GPUs under
the signed-in visitor's own account and cost). For HF Jobs it shows the GPU flavors from list_jobs_hardware with
their price per hour, a time limit, what the run may cost at most and the owner's cap per run
(DFD_STUDIO_HF_JOBS_MAX_USD), and it launches through engine.hf_tracker, which stores the run as a job row the
Jobs tab, Compare and Publish read as a local one. Every refusal says what to do (studio/hf_jobs.py's checks,
engine.hf_jobs.plan's)."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

import engine

from . import hf_jobs
from .access import LOCAL, Access
from .auth import JOBS_SCOPE, missing_scope
from .distill_request import _message, _sentence, request_from_form
from .identity import visitor_of

TARGETS = [("this machine", "local"), ("HF Jobs (your Hugging Face account, at your cost)", "hf-jobs")]
DEFAULT_HOURS = 6.0
HARDWARE_FRESH_S = 600.0  # the price list is asked for again after this long
_hardware: dict = {}  # "at", "list": list_jobs_hardware's last answer (the same for every visitor)


def hub_api():
    from huggingface_hub import HfApi  # the Hub client: only when HF Jobs is chosen

    return HfApi()


def sign_in_of(request) -> tuple[str | None, str | None, str | None]:
    """(user name, access token, granted scopes) of the visitor's Sign in with Hugging Face; Nones when nobody is
    signed in or the sign-in expired. The token is the visitor's own: their HF Jobs run on their account."""
    inner = getattr(request, "request", None)
    scope = getattr(inner, "scope", None) or {}
    info = (inner.session.get("oauth_info") if "session" in scope else None) or {}
    if not info or (info.get("expires_at") and info["expires_at"] < time.time()):
        return None, None, None
    return visitor_of(request), info.get("access_token"), info.get("scope")


def remember_sign_in(request: gr.Request) -> None:
    """On page load: a signed-in visitor's token is kept in memory, so the HF Jobs they started are followed again
    after a restart (engine.hf_tracker)."""
    username, token, scope = sign_in_of(request)
    if username and token and missing_scope(scope, JOBS_SCOPE) is None:
        engine.hf_tracker.remember_token(username, token)


def hardware(token: str | None):
    if not _hardware or time.monotonic() - _hardware["at"] > HARDWARE_FRESH_S:
        _hardware.update(at=time.monotonic(), list=list(hub_api().list_jobs_hardware(token=token)))
    return _hardware["list"]


def cost_line(flavor: str | None, hours, environ=None) -> str:
    """What the chosen flavor costs per hour and at most in the time limit, beside the owner's cap."""
    try:
        cap = engine.hf_jobs.cost_cap(environ)
        if not flavor:
            return "Pick a GPU flavor."
        per_hour = engine.hf_jobs.price_per_hour(_hardware.get("list", []), flavor)
    except ValueError as err:
        return f"**Cannot use HF Jobs:** {err}."
    hours = float(hours or 0)
    capped = f"; this studio's cap per run: ${cap:.2f}" if cap is not None else ""
    most = per_hour * hours
    return f"{flavor}: ${per_hour:.2f}/h, at most ${most:.2f} in {hours:g} h, billed to your account{capped}."


def on_target(target: str, flavor: str | None, hours, request: gr.Request):
    """HF Jobs picked: the visitor's readiness, then the flavors with their prices; this machine: hidden again."""
    if target != "hf-jobs":
        return gr.update(visible=False), gr.skip(), ""
    username, token, scope = sign_in_of(request)
    try:
        hf_jobs.check_ready(username, scope)
        choices = hf_jobs.flavor_choices(hardware(token))
    except ValueError as err:
        return gr.update(visible=True), gr.skip(), f"**Cannot use HF Jobs:** {err}."
    except Exception as err:  # the Hub unreachable: said in one line, the form stays usable for this machine
        return gr.update(visible=True), gr.skip(), f"**Cannot list HF Jobs' GPUs:** {type(err).__name__}: {err}"
    engine.hf_tracker.remember_token(username, token)
    keys = [key for _, key in choices]
    chosen = flavor if flavor in keys else (keys[0] if keys else None)
    return gr.update(visible=True), gr.update(choices=choices, value=chosen), cost_line(chosen, hours)


def build() -> dict:
    """The target's controls (under Launch, which stays on the first screen); `inputs` go to the launch after the
    form's."""
    target = gr.Radio(TARGETS, value="local", label="Run on", elem_id="distill-target")
    with gr.Column(visible=False) as box:
        flavor = gr.Dropdown([], label="GPU flavor (price per hour)", elem_id="distill-flavor")
        hours = gr.Number(DEFAULT_HOURS, label="time limit (hours)", minimum=0.1, elem_id="distill-timeout")
        cost = gr.Markdown(elem_id="distill-cost")
    target.change(on_target, [target, flavor, hours], [box, flavor, cost], api_visibility="private")
    for component in (flavor, hours):
        component.change(cost_line, [flavor, hours], [cost], show_progress="hidden", api_visibility="private")
    return {"inputs": [target, flavor, hours], "target": target, "flavor": flavor, "hours": hours, "cost": cost}


def launch(
    data_dir: Path,
    form: dict,
    uploaded_data: str | None,
    uploaded_lora: str | None,
    target_values,
    access: Access = LOCAL,
    submitted_by: str | None = None,
    request=None,
    environ=None,
) -> tuple[str, str | None] | None:
    """Start the form's run on HF Jobs: (message, job id or None); None when the target is this machine."""
    target, flavor, hours = (list(target_values) + [None, None, None])[:3]
    if target != "hf-jobs":
        return None
    username, token, scope = sign_in_of(request)
    try:
        bucket = hf_jobs.check_ready(username, scope, environ)
        if not flavor:
            raise ValueError("pick a GPU flavor for HF Jobs")
        run = request_from_form(data_dir, form, uploaded_data, uploaded_lora, reach_hub=True, access=access)
        job, made = engine.hf_tracker.start(
            data_dir,
            hub_api(),
            run.config,
            flavor=flavor,
            timeout_s=round(float(hours or 0) * 3600),
            namespace=username,
            token=token,
            bucket=bucket,
            submitted_by=submitted_by or username,
            parent=run.parent,
            environ=environ,
        )
    except ValueError as err:
        return "**Cannot launch on HF Jobs:** " + _sentence(_message(err)), None
    return (
        f"**Started** job `{job.id}` as HF Job {job.remote['id']} on {made.flavor} under {username}: "
        f"${made.usd_per_hour:.2f}/h, at most ${made.most_usd:.2f} in {made.timeout / 3600:g} h. {run.summary}. "
        "Follow it in the Jobs tab."
    ), job.id
