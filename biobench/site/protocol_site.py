"""What each page builder of one protocol is handed (:class:`ProtocolSite`).

It lives in a module of its own, which imports no page module, so that
:mod:`biobench.site.build` imports the page modules and the page modules import this one,
without an import cycle between the build and its pages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from biobench.leaderboard import Built
    from biobench.site.writer import Writer

__all__ = ["ProtocolSite"]


@dataclass(frozen=True)
class ProtocolSite:
    """What each page builder of one protocol is handed."""

    built: Built
    #: The protocol's line on the home page (:func:`biobench.site.home_page.protocol_summary`).
    summary: Mapping[str, Any]
    #: ``render(page, template, **context)``: renders a template into the site at ``page``.
    render: Callable[..., None]
    #: Collects files copied into the site (plots, records, score files).
    out: Writer
    #: ``(protocol name, href)`` of every protocol, for the navigation bar.
    nav: list[tuple[str, str]]

    def page(self, page: str, template: str, title: str, **context: Any) -> None:
        """Render ``template`` at ``page`` with the navigation bar and the protocol's summary."""
        self.render(page, template, title=title, nav=self.nav, p=self.summary, **context)
