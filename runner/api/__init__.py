"""The HTTP client of the video API, written against ``httpx.AsyncClient``: ``client``
(create, retrieve, download), ``transport`` (aiohttp underneath httpx), ``task`` (the normalised,
checked task value), ``base`` (which URLs may be an API base), ``proxies`` (proxies from the
environment) and ``errors`` (the failure tree). It knows nothing of the store.

Nothing is imported here, so that importing the error types does not pull in httpx.
"""

import sys

# httpx imports its own command-line tool (``httpx._main``: click, rich, pygments) whenever
# those packages are installed, as they are beside shotrunner; the runner never uses it, and
# it costs about 50 ms of CPU at every start of ``run``. Marked absent, httpx skips it
# (``httpx.main`` then only says it cannot run).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # None: "not importable"
