"""Provider profiles: what the client needs to know of each video API, as pure data and
functions (no HTTP, no store).

``PROFILES`` maps each name a manifest's ``provider:`` takes to its ``Profile``; each
provider is one module here (``gateway``, ``veo``, ``runway``) and one simulator dialect
(``runner/sim/<name>.py``). docs/providers.md describes the interface and the mappings.
"""

from __future__ import annotations

from runner.model import DEFAULT_PROVIDER
from runner.providers.base import (
    Call,
    Capabilities,
    ImageNeed,
    Needs,
    Profile,
    Unmappable,
    check_capabilities,
)
from runner.providers.gateway import Gateway
from runner.providers.runway import Runway
from runner.providers.veo import Veo

PROFILES: dict[str, Profile] = {profile.name: profile for profile in (Gateway(), Veo(), Runway())}


def profile(name: str) -> Profile:
    """The profile called ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise KeyError(f"no provider {name!r} (known: {known})") from None


__all__ = [
    "DEFAULT_PROVIDER",
    "PROFILES",
    "Call",
    "Capabilities",
    "ImageNeed",
    "Needs",
    "Profile",
    "Unmappable",
    "check_capabilities",
    "profile",
]
