"""The HTTP client of the video API, written against ``httpx.AsyncClient``: ``client``
(create, retrieve, download), ``transport`` (aiohttp underneath httpx), ``task`` (the normalised,
checked task value), ``base`` (which URLs may be an API base), ``proxies`` (proxies from the
environment) and ``errors`` (the failure tree). It knows nothing of the store.

Nothing is imported here, so that importing the error types does not pull in httpx.
"""
