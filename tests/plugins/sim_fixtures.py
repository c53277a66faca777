"""Fixtures that start the built-in simulator on loopback (filled in with the simulator)."""
