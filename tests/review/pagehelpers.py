"""Reading the contact sheet in tests: its elements, the part of the page about one shot, and
waiting in a browser for the page to reach a state."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def elements(page: str, tag: str) -> list[dict[str, str | None]]:
    """The attributes of every ``tag`` element, in page order."""
    collector = _Collector()
    collector.feed(page)
    return [attrs for name, attrs in collector.elements if name == tag]


def shot_section(page: str, shot_id: str) -> str:
    """The HTML of one shot's section."""
    start = page.index(f'data-shot="{shot_id}"')
    return page[start : page.index("</section>", start)]


def take_article(page: str, shot_id: str, take: int) -> str:
    """The HTML of one take's card."""
    section = shot_section(page, shot_id)
    start = section.index(f'data-take="{take}"')
    return section[start : section.index("</article>", start)]


def wait_until(tab: Page, expression: str, timeout: float = 10) -> None:
    """Poll a JavaScript expression until it is true, failing after ``timeout`` seconds.

    Not ``wait_for_function``: that evaluates its predicate with ``eval`` inside the page,
    which the sheet's Content-Security-Policy forbids (as it should).
    """
    deadline = time.monotonic() + timeout
    while not tab.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        tab.wait_for_timeout(50)
