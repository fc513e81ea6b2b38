"""The status bar: who you are, links, who is reachable and how far, what waits to be sent."""

from __future__ import annotations

from textual.widgets import Static

from tui.session import Session
from tui.widgets.format import escape, progress_line


class StatusBar(Static):
    """One line, refreshed by the screen's timer."""

    def __init__(self, session: Session, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.session = session
        #: file id -> the latest progress of each fetch under way (the screen keeps it)
        self.transfers: dict[str, dict[str, object]] = {}

    def refresh_status(self, catching_up: bool = False) -> None:
        status = self.session.status()
        if not status:
            return  # an attached UI before the node's first answer
        reachable = sorted(status["routes"], key=lambda r: (r["hops"], r["dest"]))
        peers = " ".join(
            f"{self.session.display_name(r['dest'])}({r['hops']})" for r in reachable[:6]
        )
        more = f" +{len(reachable) - 6}" if len(reachable) > 6 else ""
        mailbox = status["caches"].get("mailbox", {}).get("size", 0)
        outbox = status["chat"]["outbox"]
        sync = "  [b]⟳ catching up[/]" if catching_up else ""
        files = "".join(
            f"  │ ⇣ {escape(progress_line(shown))}" for shown in self.transfers.values()
        )
        line = (
            f"[b]{self.session.display_name(self.session.me)}[/] {self.session.me[:8]}"
            f"  │ links {len(status['links'])}"
            f"  │ reachable: {peers or 'none'}{more}"
            f"  │ mailbox {mailbox}  │ unsent {outbox}{sync}{files}"
        )
        if line != self.content:  # the same line again would lay the whole screen out again
            self.update(line)
