"""Every way a call to the video API can fail, as types the engine can decide on.

    ShotrunnerError (runner.errors)
    └── ApiError               any failed call; ``status`` and ``code`` when the server gave them
        ├── AuthError          401/403 on the API: the key is wrong; stop everything (exit 2)
        ├── RateLimited        429: wait ``retry_after`` seconds when given, own backoff when not
        ├── TransientError     5xx, timeouts, dropped connections, a request past its
        │   │                  deadline, an answer over the size cap or not a usable task;
        │   │                  ``sent`` tells "never left the machine" (False) from "sent,
        │   │                  answer lost" (True)
        │   └── DownloadError  a body shorter or longer than announced, a broken stream
        │       └── BadClip    what arrived cannot be a clip: over the size cap, or not a
        │                      media container; ask for a fresh URL and download again
        ├── Rejected           400/422 (and other 4xx): the server refused this request
        ├── NotFound           404, or 400 with code ``task_not_exist``: the task is unknown
        ├── UnusableAnswer     a create was answered, but not with a task id this client can
        │                      keep (too long, control characters): the task may exist and
        │                      be billed; it is never sent again
        └── LinkExpired        a download URL answered 403/404/410: ask the task for a fresh one

A bare ``ApiError`` is raised only for what fits no kind above (an unexpected redirect or an
unusable URL); treat it as a failure of the job. The client never retries: the engine decides,
with ``runner.retry``. No message, exception or repr carries the API key.
"""

from __future__ import annotations

from runner.errors import ConfigError, ShotrunnerError


class ApiError(ShotrunnerError):
    """A call to the video API failed."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status!r}, code={self.code!r})"
        )


class AuthError(ApiError, ConfigError):
    """The API refused the key (401/403): nothing further can succeed."""


class RateLimited(ApiError):
    """429: a rate or concurrency limit. ``retry_after`` is the server's wait in seconds, if any."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        code: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class TransientError(ApiError):
    """A failure that may pass: 5xx, a timeout, a dropped connection.

    ``sent`` is False when the request never left the machine (connect error, pool timeout):
    retrying cannot duplicate anything. True when it was sent and the answer was lost: a create
    may already exist on the server and be billed.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        sent: bool = True,
    ):
        super().__init__(message, status=status, code=code)
        self.sent = sent


class DownloadError(TransientError):
    """A download broke off or its body did not match its headers; downloading again may work."""


class BadClip(DownloadError):
    """A download whose body cannot be a clip: larger than the client's cap, or not starting
    like a media container (an MP4's ``ftyp`` box, a WebM/Matroska header). A server fault:
    the part file is removed; ask the task for a fresh URL and download again."""


class Rejected(ApiError):
    """The server refused the request (400/422); ``message`` carries the server's reason."""


class NotFound(ApiError):
    """The server does not know the task (404, or 400 with code ``task_not_exist``)."""


class LinkExpired(ApiError):
    """A download URL answered 403/404/410: the signature expired; poll the task again."""


class UnusableAnswer(ApiError):
    """A create was answered, but its task id cannot be kept (over 256 characters, control
    characters, not a string). The task may exist and be billed: the job fails, recorded as
    possibly billed, and is never sent again by this run."""
