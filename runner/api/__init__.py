"""The HTTP client of the video API (API.md): ``errors`` (the failure tree), ``task`` (the
normalised task value) and ``client`` (create, retrieve, download). It knows nothing of the store.

Nothing is imported here, so that importing the error types does not pull in httpx.
"""
