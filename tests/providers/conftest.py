"""The dialect fixtures of the simulator's tests, for holding the profiles against them."""

from __future__ import annotations

from tests.sim.sdk import client_tls, server_tls, start_runway, start_veo, tls_ca

__all__ = ["client_tls", "server_tls", "start_runway", "start_veo", "tls_ca"]
