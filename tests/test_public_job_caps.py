"""A public studio's caps on queued work: Compare's and Diversity's sample jobs count against the queue's cap
and are their visitor's, each visitor (anonymous ones together, apart from the owner's command-line jobs) has
a cap of active jobs, one request's jobs fit together or not at all, and Resume is held to the same caps."""

from __future__ import annotations

import pytest

from engine.jobs import list_jobs
from public_helpers import public_access as _public


def test_compare_and_diversity_sample_jobs_count_against_the_queue_cap(data_dir):
    from studio import compare, diversity
    from studio.files import public_folder

    public, shown = _public(data_dir, DFD_STUDIO_MAX_QUEUED="1"), public_folder(data_dir)
    result, pending = compare.queue(
        data_dir, shown, "shapes-tiny", "a red circle", 1, None, None, 50, 5.0, access=public
    )
    assert result is None and len(pending.job_ids) == 1
    with pytest.raises(ValueError, match="^1 job is already waiting in this public studio's queue"):
        compare.queue(data_dir, shown, "shapes-tiny", "a blue square", 1, None, None, 50, 5.0, access=public)
    with pytest.raises(ValueError, match="^1 job is already waiting in this public studio's queue"):
        diversity.queue(data_dir, shown, "shapes-tiny", "a cat", 2, ["teacher"], access=public)
    assert len(list_jobs(data_dir)) == 1


def _sample(data_dir, tab, prompt, identity, visitor):
    """Queue the teacher's sample job of a Compare ("compare") or Diversity ("diversity") request as `visitor`."""
    from studio import compare, diversity
    from studio.files import public_folder

    public, shown = _public(data_dir), public_folder(data_dir)
    if tab == "compare":
        request = ("shapes-tiny", prompt, 1, None, None, 50, 5.0)
        return compare.queue(data_dir, shown, *request, access=public, identity=identity, visitor=visitor)[1]
    request = ("shapes-tiny", prompt, 2, ["teacher"])
    return diversity.queue(data_dir, shown, *request, access=public, identity=identity, visitor=visitor)[1]


def test_sample_jobs_are_the_visitors_and_count_in_their_cap_of_active_jobs(data_dir):
    from engine.jobs import get
    from studio import jobs
    from studio.identity import Identity

    visitors = Identity(True, "olga", max_active_jobs=2)
    first = _sample(data_dir, "compare", "a red circle", visitors, "bob")
    second = _sample(data_dir, "diversity", "a cat", visitors, "bob")
    assert [get(data_dir, i).submitted_by for i in first.job_ids + second.job_ids] == ["bob", "bob"]
    with pytest.raises(ValueError) as refused:
        _sample(data_dir, "compare", "a blue square", visitors, "bob")
    assert str(refused.value) == (
        "you already have 2 jobs queued or running, the most this studio allows a visitor at once (2); wait for "
        "one to finish or cancel one (the owner can change it with DFD_STUDIO_MAX_ACTIVE_JOBS)"
    )
    assert _sample(data_dir, "compare", "a blue square", visitors, "ann") is not None  # bob's cap is his own
    assert _sample(data_dir, "diversity", "a dog", visitors, "olga") is not None  # the owner has none
    assert "queued by someone else" in jobs.cancel(data_dir, first.job_ids[0], visitors, "ann")
    assert jobs.cancel(data_dir, first.job_ids[0], visitors, "bob") == f"Job {first.job_ids[0]} is cancelled."
    assert _sample(data_dir, "compare", "a blue square", visitors, "bob") is not None  # one finished: room again

    _sample(data_dir, "compare", "a red circle", visitors, None)  # open mode: who did not sign in shares one cap
    _sample(data_dir, "diversity", "a cat", visitors, None)
    with pytest.raises(ValueError, match=r"^visitors who have not signed in already have 2 jobs queued or running"):
        _sample(data_dir, "compare", "a green triangle", visitors, None)
    assert len(list_jobs(data_dir)) == 7


def test_anonymous_visitors_have_a_cap_of_their_own_apart_from_the_owners_command_line_jobs(data_dir):
    """In an open studio (DFD_STUDIO_OPEN=1) the jobs of visitors who did not sign in are recorded as ANONYMOUS:
    the owner's command-line jobs (no submitter) take none of their cap, and they still may act on no job."""
    from engine.jobs import get, submit
    from studio import active_jobs_of, jobs
    from studio.admission import ANONYMOUS, submitter_of
    from studio.identity import LOCAL_OWNER, Identity

    visitors = Identity(True, "olga", max_active_jobs=2)
    assert submitter_of(visitors, None) == ANONYMOUS and submitter_of(visitors, "bob") == "bob"
    assert submitter_of(LOCAL_OWNER, None) is None  # a local studio's user is the owner
    for _ in range(2):
        submit(data_dir, "distill", {"steps": 5})  # the owner's command line
    first = _sample(data_dir, "compare", "a red circle", visitors, None)  # not refused: those two are the owner's
    assert get(data_dir, first.job_ids[0]).submitted_by == ANONYMOUS
    assert active_jobs_of(data_dir, ANONYMOUS) == 1 and active_jobs_of(data_dir, None) == 2
    _sample(data_dir, "diversity", "a cat", visitors, None)
    with pytest.raises(ValueError, match=r"^visitors who have not signed in already have 2 jobs queued or running"):
        _sample(data_dir, "compare", "a green triangle", visitors, None)
    assert "this studio has no login" in jobs.cancel(data_dir, first.job_ids[0], visitors, None)
    assert _sample(data_dir, "compare", "a green triangle", visitors, "bob") is not None  # bob's cap is his own


def test_the_compare_and_diversity_buttons_queue_as_the_signed_in_visitor_and_say_which_limit_refused(data_dir):
    import gradio as gr

    from studio import compare, diversity
    from studio.files import public_folder
    from studio.identity import Identity

    visitors, public = Identity(True, "olga", max_active_jobs=1), _public(data_dir)
    with gr.Blocks() as demo:
        compare.build(data_dir, public_folder(data_dir), "shapes-tiny", public, visitors)
        diversity.build(data_dir, public_folder(data_dir), "shapes-tiny", public, visitors)
    clicks = [f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_click_as"]
    assert len(clicks) == 2
    compare_click, diversity_click = clicks
    bob = gr.Request(username="bob")
    *_, error, _ = compare_click(bob, "shapes-tiny", "a red circle", 1, None, None, 50, 5.0, True, None, 0)
    [job] = list_jobs(data_dir)
    assert error == "" and job.kind == "sample" and job.submitted_by == "bob"
    *_, error, _ = diversity_click(bob, "shapes-tiny", "a cat", 2, ["teacher"], True, "", None)
    assert error == (
        "**Cannot measure:** you already have 1 job queued or running, the most this studio allows a visitor at "
        "once (1); wait for one to finish or cancel one (the owner can change it with DFD_STUDIO_MAX_ACTIVE_JOBS)"
    )
    assert len(list_jobs(data_dir)) == 1


def test_one_requests_sample_jobs_fit_the_queue_together_or_not_at_all(data_dir):
    from engine.jobs import submit
    from studio.limits import PublicLimits

    limits = PublicLimits(max_queued=3)
    submit(data_dir, "distill", {"steps": 5}, submitted_by="ann")
    limits.check_queue(data_dir, 2)
    with pytest.raises(ValueError) as refused:
        limits.check_queue(data_dir, 3)
    assert str(refused.value) == (
        "this request queues 3 jobs and 1 already wait in this public studio's queue, which holds at most 3; ask "
        "for fewer at once, or again when some have started (the owner can change it with DFD_STUDIO_MAX_QUEUED)"
    )


def test_resume_is_held_to_the_queue_cap_the_visitors_cap_and_the_disk(data_dir, monkeypatch):
    import gradio as gr

    from engine.jobs import get, submit
    from studio import jobs
    from studio.files import public_folder
    from studio.identity import Identity

    visitors, public = Identity(True, "olga", max_active_jobs=1), _public(data_dir, DFD_STUDIO_MAX_QUEUED="2")
    bobs = submit(data_dir, "distill", {"steps": 5}, submitted_by="bob").id
    jobs.cancel(data_dir, bobs, visitors, "bob")
    anns = [submit(data_dir, "distill", {"steps": 5}, submitted_by=f"ann{i}").id for i in range(2)]
    with gr.Blocks() as demo:  # through the Jobs tab's Resume button, as the signed-in visitor
        jobs.build(data_dir, public_folder(data_dir), visitors, public)
    [on_resume] = [f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_resume"]
    message, *_ = on_resume(bobs, gr.Request(username="bob"))
    assert message == (
        f"Cannot resume job {bobs}: 2 jobs are already waiting in this public studio's queue, the most it holds; "
        "launch again when one has started (the owner can change it with DFD_STUDIO_MAX_QUEUED)."
    )
    jobs.cancel(data_dir, anns[0], visitors, "ann0")
    other = submit(data_dir, "distill", {"steps": 5}, submitted_by="bob").id
    assert jobs.resume(data_dir, bobs, visitors, "bob", public).startswith(
        f"Cannot resume job {bobs}: you already have 1 job queued or running, the most this studio allows"
    )
    jobs.cancel(data_dir, other, visitors, "bob")
    monkeypatch.setenv("DFD_STUDIO_MIN_FREE_MB", str(10**12))  # more than any disk has
    message = jobs.resume(data_dir, bobs, visitors, "bob", public)
    assert message.startswith(f"Cannot resume job {bobs}: this machine's disk has ") and message.endswith(
        "so the job cannot start now; try again later (the owner can free space, or change DFD_STUDIO_MIN_FREE_MB)."
    )
    assert get(data_dir, bobs).state == "cancelled"  # every refusal left it as it was
    monkeypatch.delenv("DFD_STUDIO_MIN_FREE_MB")
    queued_again = f"Job {bobs} is queued again; it continues from its newest checkpoint."
    assert on_resume(bobs, gr.Request(username="bob"))[0] == queued_again
