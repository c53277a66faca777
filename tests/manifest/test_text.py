"""Outside text is shown with its control characters made visible, and bounded."""

from runner.text import MAX_SHOWN, shorten, shown, visible


def test_escape_sequences_are_shown_not_acted_on():
    """An OSC title, a clear-screen and a C1 control show as escapes."""
    text = "\x1b]0;owned\x07\x1b[2J\x9bdone"
    assert visible(text) == "\\x1b]0;owned\\x07\\x1b[2J\\x9bdone"


def test_newlines_are_escaped_unless_kept():
    """A one-line message cannot be split by a newline from outside; a multi-line one keeps them."""
    assert visible("a\nb") == "a\\x0ab"
    assert visible("a\n\x1bb", keep_newlines=True) == "a\n\\x1bb"


def test_bidi_overrides_are_shown():
    """A right-to-left override cannot reorder what a user reads."""
    assert visible("abc\u202edef") == "abc\\u202edef"


def test_plain_text_and_emoji_pass_unchanged():
    """Ordinary text, accents and joined emoji are left alone."""
    text = "café 👩\u200d🎤 ok"
    assert visible(text) == text


def test_long_text_is_shortened_with_its_length():
    """Text past the limit keeps its start and says how long it was."""
    text = "x" * (MAX_SHOWN + 5)
    out = shorten(text)
    assert out.startswith("x" * MAX_SHOWN)
    assert f"{MAX_SHOWN + 5:,} characters in all" in out
    assert shorten("short") == "short"
    assert shown("\x1b" * 3, limit=2).startswith("\\x1b\\x1b…")
