"""What every simulated provider's API must say in its own words: the ``Dialect`` base class.

The server (``server.py``) owns what all providers share: the two listeners, the request
faults, the task store, the signed file host and the clip. A dialect owns the rest, in one
module per provider (``gateway.py``, ``veo.py``, ``runway.py``): its routes, how a key is
presented, what its errors, task ids and task bodies look like, and which creates it refuses.
Adding a provider means one module with one subclass, listed in ``runner.sim.dialects``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

if TYPE_CHECKING:
    from runner.sim.server import Simulator


@dataclass(frozen=True)
class Invalid:
    """Why a create request is refused: the service's error code, message and field."""

    code: str
    message: str
    param: str | None = None


class Dialect:
    """One provider's API over the shared simulator. Subclasses fill in every hook."""

    #: The name ``--dialect`` takes.
    name: ClassVar[str]
    #: Appended to the API origin to make the base URL a client is given ("/v1", or "").
    base_path: ClassVar[str] = ""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def honours_idempotency(self) -> bool:
        """Whether ``Idempotency-Key`` is honoured (only by a provider that documents it)."""
        return False

    def routes(self) -> list[web.RouteDef]:
        """The API listener's routes."""
        raise NotImplementedError

    def new_task_id(self) -> str:
        """A fresh task id in the provider's form."""
        raise NotImplementedError

    def key_refusal(self, request: web.Request, token: str) -> web.Response | None:
        """The answer to a request without the right key (``token``), or None if it has it."""
        raise NotImplementedError

    def error(self, status: int, code: str, message: str, param: str | None = None) -> web.Response:
        """An error answer with the provider's body shape."""
        raise NotImplementedError

    def rate_limited(self) -> web.Response:
        """The answer to a request over the rate limit (429)."""
        return self.error(429, "rate_limit_exceeded", "Too many requests; try again later.")

    def busy(self, limit: int) -> web.Response:
        """The answer to a create while ``limit`` tasks are unfinished (429)."""
        message = f"Too many active tasks (at most {limit}); try again later."
        return self.error(429, "concurrency_limit_exceeded", message)

    def denied(self, status: int) -> web.Response:
        """The answer to a poll refused by ``deny_polls`` (401 or 403)."""
        if status == 401:
            return self.error(401, "invalid_api_key", "Invalid or missing API key.")
        return self.error(403, "permission_denied", "This key may not read this task.")

    def not_found(self) -> web.Response:
        """The answer about a task the service does not know (or no longer knows)."""
        raise NotImplementedError


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")
