"""The first pass over a data set shown as its own progress: decoding and encoding every video's windows
into the cache takes minutes for a few thousand clips (every later run reads the cache), which a
"0/N steps" bar does not tell. DataProgress turns the data loader's progress(done, total) calls into
(done, total, eta_s) reports, at most one a second and always the last, with the ETA from the pace since
the first report (videos already cached are counted at once, so they do not make the rest look fast)."""

from __future__ import annotations

import time


class DataProgress:
    """progress(done, total) for engine.distill.data.load_data; calls report(done, total, eta_s)."""

    def __init__(self, report, every_s: float = 1.0, clock=time.monotonic):
        self.report, self.every_s, self.clock = report, every_s, clock
        self.first: tuple[float, int] | None = None  # (time, done) at the first report
        self.last_shown = -float("inf")

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self.first is None:
            self.first = (now, done)
        if done < total and now - self.last_shown < self.every_s:
            return
        self.last_shown = now
        self.report(done, total, self.eta_s(done, total, now))

    def eta_s(self, done: int, total: int, now: float) -> float | None:
        """Seconds left at the pace since the first report; None until a video past it is done."""
        started, done_then = self.first
        if done >= total:
            return 0.0
        if done <= done_then or now <= started:
            return None
        return (total - done) * (now - started) / (done - done_then)
