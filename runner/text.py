"""Showing text that comes from outside (the API, the manifest, the state database) safely.

Server answers and manifest strings can carry terminal control sequences: an OSC that sets the
window title or plants a hyperlink, a clear-screen, a cursor move that hides a line. Every such
string is passed through ``visible`` before it reaches a terminal, a pipe or a log, so each
control character shows as its escape (``\\x1b``) instead of acting. The stored value keeps its
exact bytes; only what is shown changes.

``shorten`` bounds text kept or shown from outside: a 2 MB error message is stored and printed
as its first ``MAX_SHOWN`` characters and a note of its full length.
"""

from __future__ import annotations

import re

#: Characters of outside text kept in the store or shown; the rest is cut with a note.
MAX_SHOWN = 2000

# C0 controls, DEL, C1 controls, and the Unicode format characters that reorder or hide text
# (bidirectional overrides and isolates, zero-width joiners are left alone: emoji need them).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character shown as its escape, so it cannot act on a
    terminal. ``keep_newlines`` leaves line ends alone, for text printed as several lines."""
    if keep_newlines:
        return "\n".join(_CONTROL.sub(_escape, line) for line in text.split("\n"))
    return _CONTROL.sub(_escape, text)


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, with a note of how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters in all)"


def shown(text: str, limit: int = MAX_SHOWN) -> str:
    """Outside text as it may be printed: shortened, then made visible."""
    return visible(shorten(text, limit))
