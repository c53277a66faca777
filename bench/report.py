"""The results of a suite run as values, and their Markdown page (``bench/RESULTS.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """One target of issue 6 and whether this run met it."""

    name: str
    measured: str
    wanted: str
    met: bool

    @property
    def verdict(self) -> str:
        return "PASS" if self.met else "MISS"


@dataclass
class Section:
    """One benchmark: its setup, a table of figures per side, its targets, notes."""

    title: str
    setup: str
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def target(self, name: str, measured: str, wanted: str, met: bool) -> None:
        self.targets.append(Target(name, measured, wanted, met))


def fmt(value: float, digits: int = 2) -> str:
    """A figure for a table: fixed decimals, thousands separated, NaN as a dash."""
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def ratio(value: float, reference: float) -> float:
    return value / reference if reference else float("nan")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render(machine: dict[str, str], sections: Sequence[Section], mode: str, command: str) -> str:
    """The whole RESULTS.md page."""
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `{command}` ({mode} sizes). Every comparison ran both sides in this same",
        "run, against the built-in simulator on loopback (`runner.sim`, in the harness process).",
        "Each side is its own child process: its CPU seconds and peak RSS come from `wait4` on",
        "that child alone; HTTP requests are counted by the simulator's recorder, both listeners",
        "(API and file host). How to run it and what each figure means: `bench/README.md`;",
        "the causes of the misses, profiled, and the fixes proposed: `bench/ANALYSIS.md`.",
        "",
        "## Machine",
        "",
        *table(["", ""], [[key, value] for key, value in machine.items()]),
        "",
        "## Targets",
        "",
    ]
    summary = []
    for section in sections:
        if section.error is not None:
            summary.append([section.title, "(did not run)", "-", "-", "ERROR"])
        for target in section.targets:
            summary.append(
                [section.title, target.name, target.measured, target.wanted, target.verdict]
            )
    lines += table(["benchmark", "target", "measured", "wanted", "verdict"], summary)
    for section in sections:
        lines += ["", f"## {section.title}", "", section.setup, ""]
        if section.error is not None:
            lines += ["```", section.error.strip(), "```"]
            continue
        if section.rows:
            lines += table(section.header, section.rows)
            lines.append("")
        for target in section.targets:
            lines.append(
                f"- **{target.verdict}** {target.name}: {target.measured} (wanted {target.wanted})"
            )
        if section.notes:
            lines.append("")
            lines += [f"- {note}" for note in section.notes]
    return "\n".join(lines) + "\n"
