"""The gateway of docs/api.md: the profile whose create body is the generic request itself.

``POST {base}/videos`` with ``Authorization: Bearer`` and an ``Idempotency-Key``; the task
is polled at ``/videos/{id}`` and read by ``runner.api.task.Task``, which knows every
status word, progress form and URL place the gateway's backends use. The gateway takes any
model and checks requests itself, so the profile has no capability table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from runner.api.task import Task
from runner.providers.base import Call, Profile


class Gateway(Profile):
    """The gateway: shotrunner's own API, and the default provider."""

    name: ClassVar[str] = "gateway"
    key_env: ClassVar[str] = "SHOTRUNNER_API_KEY"
    idempotent_creates: ClassVar[bool] = True
    content_route: ClassVar[bool] = True

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def download_needs_key(self, url: str, base_url: str) -> bool:
        # The gateway's own content route takes the key; any other origin never does.
        from urllib.parse import urlsplit

        def origin(text: str) -> tuple[str, str, int | None]:
            parts = urlsplit(text)
            scheme = parts.scheme.lower()
            return (
                scheme,
                (parts.hostname or "").lower(),
                parts.port or {"https": 443, "http": 80}.get(scheme),
            )

        return origin(url) == origin(base_url)

    def create_call(self, request: Mapping[str, Any]) -> Call:
        return Call("POST", "/videos", dict(request))

    def created_id(self, answer: Any) -> str:
        return self.read_task(answer).id

    def poll_path(self, task_id: str) -> str:
        return f"/videos/{task_id}"

    def read_task(self, answer: Any) -> Task:
        return Task.from_json(answer)

    def base_advice(self) -> str:
        return (
            "check --api-base or SHOTRUNNER_API_BASE (the base includes the version prefix, "
            "e.g. https://octopusx.ai/v1)"
        )
