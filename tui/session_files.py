"""What the UI's session offers of attachments, whether its node runs here or elsewhere:
the files known to the home (read from its database), the pictures among them opened in
memory, and fetching, saving and sending (which the node does)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from chat.files.export import open_in_memory
from chat.files.holdings import Holdings, view
from mesh.errors import MeshError, UsageError


class Attachments(ABC):
    """The attachment half of :class:`tui.session.Session`."""

    @property
    @abstractmethod
    def holdings(self) -> Holdings | None:
        """The attachments kept for this home (None: none can be read)."""

    def attachment(self, msg_id: str) -> dict[str, Any] | None:
        """The file a message announced (as ``files list`` shows it), or None."""
        holdings = self.holdings
        return None if holdings is None else holdings.by_message(msg_id)

    def file(self, file: str) -> dict[str, Any]:
        """A file known here by its id or an id prefix, as ``files list`` shows it
        (UsageError: none, or no attachments can be read)."""
        holdings = self.holdings
        if holdings is None:
            raise UsageError("attachments cannot be read in this home")
        return view(holdings.resolve(file))

    def files(self) -> list[dict[str, Any]]:
        """Every file known here, newest first, as ``files list`` shows them."""
        holdings = self.holdings
        return [] if holdings is None else holdings.all()

    @abstractmethod
    def fetch_file(self, file: str) -> dict[str, Any]:
        """Start fetching a file (unless it is kept or on its way); its progress."""

    @abstractmethod
    async def save_file(self, file: str, out: Path) -> dict[str, Any]:
        """Write a kept file out (`out` a directory: under its name): {"path", ...}."""

    def picture(self, msg_id: str, most: int) -> bytes | None:
        """The picture a message announced, opened in memory, if it is kept here whole and
        no larger than `most` bytes (None otherwise, or if its kept copy does not check)."""
        holdings = self.holdings
        row = None if holdings is None else holdings.by_message(msg_id)
        return None if row is None else self.picture_of(row, most)

    def picture_of(self, row: dict[str, Any], most: int) -> bytes | None:
        """A file (as ``files list`` shows it) opened in memory, if it is a picture kept here
        whole and no larger than `most` bytes (None otherwise, or if it does not check)."""
        holdings = self.holdings
        if holdings is None or row["state"] != "complete" or row["size"] > most:
            return None
        if not str(row["mime"]).startswith("image/"):
            return None
        full = holdings.row(row["file_id"])
        if full is None:
            return None
        try:
            return open_in_memory(holdings.chunks, holdings.descriptor(full))
        except (MeshError, OSError):
            return None

    @abstractmethod
    async def send_file(self, conv_id: str, path: Path) -> dict[str, Any]:
        """Seal a file and announce it in a conversation: {"file_id", "message_id", ...}."""
