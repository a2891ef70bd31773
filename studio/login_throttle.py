"""Slowing down password guessing without letting a stranger lock the owner out.

Failures are counted per (client address, user name): after FREE_FAILURES failures in a row that pair is
locked for a time that doubles with each further failure (up to MAX_LOCK_SECONDS). A stranger guessing the
owner's name from their own address locks only themselves; the owner, from another address, still signs in.
Guessing from many addresses at once is bounded by a global budget of GLOBAL_FAILURES failures per
GLOBAL_WINDOW seconds: past it, clients that have never signed in here are refused until the window
moves on, while a client that has signed in before (the owner's browser) is still checked.

Memory is bounded: at most MAX_RECORDS pairs and MAX_KNOWN_CLIENTS known clients are kept, the oldest
dropped first. Failures are logged one line each up to LOG_PER_WINDOW per window, then one summary line,
never with the password.

The client address is read by `ClientAddress` (an ASGI middleware) while gradio's /login runs, since
gradio's auth callable is given only the name and the password.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("dfd.studio.auth")

FREE_FAILURES = 3  # failures in a row answered without delay (typos)
MAX_LOCK_SECONDS = 60.0
GLOBAL_FAILURES = 60  # failures of all clients together per window
GLOBAL_WINDOW = 60.0
MAX_RECORDS = 4096
MAX_KNOWN_CLIENTS = 256
LOG_PER_WINDOW = 20

_client: contextvars.ContextVar[str] = contextvars.ContextVar("dfd_login_client", default="unknown")


def current_client() -> str:
    """The address of the client whose login is being checked ("unknown" outside a request)."""
    return _client.get()


def client_of_scope(scope: dict) -> str:
    """The client of an ASGI request: the last X-Forwarded-For entry (the one the nearest proxy, such as a
    Space's, appended, so a client cannot choose it) when present, else the socket's peer address."""
    for name, value in scope.get("headers") or ():
        if name == b"x-forwarded-for":
            return value.decode("latin-1").split(",")[-1].strip() or "unknown"
    peer = scope.get("client")
    return peer[0] if peer else "unknown"


class ClientAddress:
    """ASGI middleware: remember the client's address for the duration of each /login request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http" and scope.get("path", "").rstrip("/").endswith("/login"):
            token = _client.set(client_of_scope(scope))
            try:
                return await self.app(scope, receive, send)
            finally:
                _client.reset(token)
        return await self.app(scope, receive, send)


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0


@dataclass
class LoginThrottle:
    """Backoff per (client, user), a global failure budget, and bounded memory (see the module text)."""

    clock: Callable[[], float] = time.monotonic
    records: OrderedDict = field(default_factory=OrderedDict)
    known_clients: OrderedDict = field(default_factory=OrderedDict)
    recent_failures: deque = field(default_factory=deque)
    logged_in_window: int = 0
    unlogged: int = 0
    window_started: float | None = None

    def _global_count(self) -> int:
        now = self.clock()
        while self.recent_failures and self.recent_failures[0] <= now - GLOBAL_WINDOW:
            self.recent_failures.popleft()
        return len(self.recent_failures)

    def locked_for(self, client: str, user: str) -> float:
        """Seconds until `user` may be tried again from `client` (0 when it may be now)."""
        now = self.clock()
        record = self.records.get((client, user))
        own = max(0.0, record.locked_until - now) if record else 0.0
        if own == 0.0 and client not in self.known_clients and self._global_count() >= GLOBAL_FAILURES:
            return max(0.0, self.recent_failures[0] + GLOBAL_WINDOW - now)
        return own

    def failed(self, client: str, user: str) -> _Record:
        key = (client, user)
        record = self.records.pop(key, None) or _Record()
        self.records[key] = record  # most recent last: the oldest is dropped first
        while len(self.records) > MAX_RECORDS:
            self.records.popitem(last=False)
        record.failures += 1
        if record.failures >= FREE_FAILURES:
            record.locked_until = self.clock() + min(MAX_LOCK_SECONDS, 2.0 ** (record.failures - FREE_FAILURES))
        self.recent_failures.append(self.clock())
        while len(self.recent_failures) > GLOBAL_FAILURES:
            self.recent_failures.popleft()
        self._log(client, user, record.failures)
        return record

    def succeeded(self, client: str, user: str) -> None:
        self.records.pop((client, user), None)
        self.known_clients.pop(client, None)
        self.known_clients[client] = True
        while len(self.known_clients) > MAX_KNOWN_CLIENTS:
            self.known_clients.popitem(last=False)

    def _log(self, client: str, user: str, failures: int) -> None:
        now = self.clock()
        if self.window_started is None or now - self.window_started >= GLOBAL_WINDOW:
            if self.unlogged:
                log.warning(
                    "studio login: %d more failures not logged one by one in the last %.0f s",
                    self.unlogged,
                    GLOBAL_WINDOW,
                )
            self.window_started, self.logged_in_window, self.unlogged = now, 0, 0
        if self.logged_in_window < LOG_PER_WINDOW:
            self.logged_in_window += 1
            log.warning("studio login failed for user %r from %s (%d failures in a row)", user, client, failures)
        else:
            self.unlogged += 1
