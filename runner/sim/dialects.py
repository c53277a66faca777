"""Every dialect the simulator speaks, by the name ``--dialect`` takes."""

from __future__ import annotations

from runner.sim.dialect import Dialect
from runner.sim.gateway import Gateway
from runner.sim.runway import Runway
from runner.sim.veo import Veo

DIALECTS: dict[str, type[Dialect]] = {dialect.name: dialect for dialect in (Gateway, Veo, Runway)}
