"""DFD Studio's Gradio UI: one module per tab (distill, jobs, compare, diversity, publish); each builds its
components and calls engine's public API. This module wires them into one page.

Only `<data_dir>/public` is ever served as files; the database, job folders, uploads and staged publish
folders are blocked outright.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

import engine.jobs as jobs_api

from . import compare, distill, distill_target, diversity, jobs, lineup, publish, zerogpu
from .access import LOCAL, Access, access_from_env, is_public
from .admission import active_jobs_of, submitter_of
from .auth import auth_from_env, launch_auth
from .files import blocked_paths, public_folder
from .identity import LOCAL_OWNER, Identity, identity_from_env, visitor_of
from .login_throttle import ClientAddress

TITLE = "DFD Studio"
TABS = ("Distill", "Jobs", "Compare", "Diversity", "Publish")


def build_studio(
    data_dir: str | Path, base: str = lineup.DEFAULT_BASE, access: Access = LOCAL, identity: Identity = LOCAL_OWNER
) -> gr.Blocks:
    """The whole app for one data folder; `base` is the teacher the tabs start with; `access` says which
    server folders and hub ids visitors may name (everything, for a studio only this machine reaches);
    `identity` who the owner is and what visitors may do to jobs (docs/security.md)."""
    data_dir = Path(data_dir).resolve()
    zerogpu.prepare()
    public_dir = public_folder(data_dir)
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"# {TITLE}\n"
            "Few-step video students by DMD2 and Data-Forcing Distillation (DFD). The built-in teacher "
            "`shapes-tiny` runs on a CPU: distill it, watch the job, compare teacher and students, measure "
            "diversity, publish."
        )
        with gr.Tabs(selected="compare") as tabs:
            with gr.Tab("Distill", id="distill") as distill_tab:
                distill_ui = distill.build(data_dir, base, access)
            with gr.Tab("Jobs", id="jobs") as jobs_tab:
                jobs_ui = jobs.build(data_dir, public_dir, identity, access)
            with gr.Tab("Compare", id="compare") as compare_tab:
                compare_ui = compare.build(data_dir, public_dir, base, access, identity)
            with gr.Tab("Diversity", id="diversity") as diversity_tab:
                diversity_ui = diversity.build(data_dir, public_dir, base, access, identity)
            with gr.Tab("Publish", id="publish") as publish_tab:
                publish_ui = publish.build(data_dir, public_dir, identity)

        # Launch: queue the job, then show it in the Jobs tab (remembered across reloads).
        def after_launch(request: gr.Request, *values):
            visitor = visitor_of(request)
            submitter = submitter_of(identity, visitor)  # in an open studio, who did not sign in: ANONYMOUS
            try:
                identity.check_active(visitor, active_jobs_of(data_dir, submitter))
            except ValueError as err:
                message = f"**Cannot launch:** {err}."
                return "", gr.skip(), gr.skip(), gr.skip(), message  # said once, in the check line under the form
            message, job_id = distill_ui["launch_fn"](*values, submitted_by=submitter, request=request)
            if job_id is None:
                return "", gr.skip(), gr.skip(), gr.skip(), message
            listed = jobs.job_choices(jobs_api.list_jobs(data_dir, limit=50))
            return message, gr.Tabs(selected="jobs"), gr.update(choices=listed, value=job_id), job_id, gr.skip()

        jobs_ui["then_in_address"](
            distill_ui["launch"]
            .click(
                after_launch,
                distill_ui["launch_inputs"],
                [distill_ui["launched"], tabs, jobs_ui["picker"], jobs_ui["remembered"], distill_ui["check"]],
                api_visibility="private",
            )
            .then(
                jobs_ui["refresh"],
                jobs_ui["inputs"],
                jobs_ui["outputs"],
                show_progress="hidden",
                api_visibility="private",
            )
        ).then(None, js=_tab_in_url("jobs"))  # shown as the opened tab, so a reload stays on it

        # The open tab is kept in the address (?tab=jobs): a reload, or the address sent to someone, opens it.
        for tab, tab_id in (
            (distill_tab, "distill"),
            (jobs_tab, "jobs"),
            (compare_tab, "compare"),
            (diversity_tab, "diversity"),
            (publish_tab, "publish"),
        ):
            tab.select(None, js=_tab_in_url(tab_id))
        asked_tab = gr.Textbox(visible=False)  # the address's ?tab=, read in the browser (js) and handed to Python
        demo.load(_tab_from_url, [asked_tab], [tabs], js=_TAB_FROM_URL, api_visibility="private")

        # Students finish while the page is open: lists refresh when their tab is opened, leaving a value that
        # is still listed as it is (a reload's restore may land first).
        compare_tab.select(
            compare_ui["list_students"],
            [compare_ui["base"], *compare_ui["students"]],
            compare_ui["students"],
            api_visibility="private",
        )
        diversity_tab.select(
            diversity_ui["refresh_models"],
            [diversity_ui["base"], diversity_ui["models"]],
            [diversity_ui["models"]],
            api_visibility="private",
        )
        publish_tab.select(
            publish_ui["refresh"], [publish_ui["student"]], publish_ui["refresh_outputs"], api_visibility="private"
        )

        # Compare, Diversity and Publish show their last request's result again after a reload (kept in the
        # browser).
        for ui in (compare_ui, diversity_ui, publish_ui):
            demo.load(
                ui["open_page"], ui["open_inputs"], ui["open_outputs"], js=ui["load_js"], api_visibility="private"
            )
        demo.load(
            distill_ui["check_fn"],
            distill_ui["launch_inputs"],
            [distill_ui["check"]],
            api_visibility="private",
            concurrency_id=distill_ui["check_group"],
        )
        demo.load(
            distill_ui["layout_fn"], distill_ui["layout_inputs"], distill_ui["layout_outputs"], api_visibility="private"
        )
        jobs_ui["then_in_address"](
            demo.load(
                jobs_ui["refresh"],
                jobs_ui["inputs"],
                jobs_ui["outputs"],
                js=jobs_ui["load_js"],
                api_visibility="private",
            )
        )
        demo.load(distill_target.remember_sign_in, None, None, api_visibility="private")  # HF Jobs followed again
    return demo


# Browser code: the address's tab, read once when the page opens; tabs selected before that (the first one
# showing) leave the address as it is.
_TAB_FROM_URL = (
    "() => { const tab = new URLSearchParams(window.location.search).get('tab'); "
    "window.dfdStudioTabRead = true; return tab; }"
)


def _tab_in_url(tab_id: str) -> str:
    """Browser code that writes the opened tab into the address without reloading or adding history."""
    return (
        f"() => {{ if (!window.dfdStudioTabRead) return; const url = new URL(window.location.href); "
        f"url.searchParams.set('tab', '{tab_id}'); window.history.replaceState(window.history.state, '', url); }}"
    )


def _tab_from_url(tab_id: str | None):
    """The tab the address names (?tab=jobs); with none, the page stays as it is (on Compare, or on a tab
    clicked while the page was loading)."""
    return gr.Tabs(selected=tab_id) if tab_id in [t.lower() for t in TABS] else gr.skip()


def launch_options(data_dir: str | Path) -> dict:
    """Keyword arguments of demo.launch that keep private files private and uploads bounded."""
    max_mb = os.environ.get("DFD_STUDIO_MAX_UPLOAD_MB", "2048")
    return {
        "allowed_paths": [str(public_folder(data_dir))],
        "blocked_paths": blocked_paths(data_dir),
        "max_file_size": f"{int(float(max_mb))}mb",
        "run_history": False,  # gradio 6 would otherwise keep every call's inputs (tokens too) in the browser
        "footer_links": ["gradio", "settings"],  # no API page: the callbacks are private
        "css": jobs.CSS + diversity.CSS,
        "show_error": True,
        "ssr_mode": False,
        "app_kwargs": {"middleware": [Middleware(ClientAddress)]},  # the login throttle needs the client
    }


__all__ = [
    "TABS",
    "TITLE",
    "Access",
    "Identity",
    "access_from_env",
    "active_jobs_of",
    "auth_from_env",
    "build_studio",
    "identity_from_env",
    "is_public",
    "launch_auth",
    "launch_options",
    "public_folder",
]
