"""What a chat envelope carries once opened: the content map, its kinds, and its checks.

Every kind travels the same way, sealed with the author's sender key inside a
CHAT payload (:mod:`chat.messages`); relays see one more chat envelope, never
which kind it is. The map (msgpack):

    {"id": msg_id, "t": text, "ts": ts_ms, "s": seq}                       a message
    ... + {"k": "reply", "r": answered_id}                                 a reply
    ... + {"k": "edit", "r": target_id}              t: the new text
    ... + {"k": "delete", "r": target_id}            t: ""
    ... + {"k": "react", "r": target_id, "on": bool} t: the emoji
    ... + {"f": descriptor}                          a message announcing an attachment

A content map without "k" is a message (what every earlier version writes). An
attachment's descriptor (bytes, :mod:`chat.files.format`) rides on a message
whose text names the file, so a version that knows no attachments shows that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh.errors import ChatError, UsageError

MAX_TEXT = 16_000
MAX_ID = 64
MAX_EMOJI = 16
MAX_ATTACHMENT = 1024

KINDS = ("msg", "reply", "edit", "delete", "react")
#: the kinds that name another message in "r"
REFERRING = ("reply", "edit", "delete", "react")


@dataclass(frozen=True)
class Content:
    """One opened content map, checked."""

    msg_id: str
    text: str
    ts: int
    seq: int
    kind: str = "msg"
    ref: str | None = None
    on: bool = True
    attachment: bytes | None = None

    def encode(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.msg_id, "t": self.text, "ts": self.ts, "s": self.seq}
        if self.attachment is not None:
            body["f"] = self.attachment
        if self.kind != "msg":
            body["k"] = self.kind
            body["r"] = self.ref
        if self.kind == "react":
            body["on"] = self.on
        return body

    @classmethod
    def decode(cls, body: Any) -> Content:
        """The content a peer sealed; ChatError(reason="malformed") for anything else."""
        if not (
            isinstance(body, dict)
            and isinstance(body.get("t"), str)
            and isinstance(body.get("id"), str)
            and isinstance(body.get("ts"), int)
            and isinstance(body.get("s"), int)
            and -(2**63) <= body["ts"] < 2**63  # SQLite INTEGER range
            and -(2**63) <= body["s"] < 2**63
            and len(body["t"]) <= MAX_TEXT
            and len(body["id"]) <= MAX_ID
        ):
            raise ChatError("malformed chat content", reason="malformed")
        kind = body.get("k", "msg")
        ref = body.get("r")
        on = body.get("on", True)
        attachment = body.get("f")
        if kind not in KINDS or not isinstance(on, bool):
            raise ChatError("malformed chat content", reason="malformed")
        if attachment is not None and not (
            kind == "msg" and isinstance(attachment, bytes) and len(attachment) <= MAX_ATTACHMENT
        ):
            raise ChatError("malformed chat content", reason="malformed")
        if kind in REFERRING:
            if not (isinstance(ref, str) and 0 < len(ref) <= MAX_ID):
                raise ChatError("malformed chat content", reason="malformed")
        elif ref is not None:
            raise ChatError("malformed chat content", reason="malformed")
        content = cls(body["id"], body["t"], body["ts"], body["s"], kind, ref, on, attachment)
        try:
            check_text(content.kind, content.text)
        except UsageError as exc:
            raise ChatError("malformed chat content", reason="malformed") from exc
        return content


def check_text(kind: str, text: str) -> None:
    """Refuse (UsageError, one line) text that a content of `kind` cannot carry."""
    if kind == "delete":
        if text:
            raise UsageError("a delete carries no text")
        return
    if kind == "react":
        if not text or len(text) > MAX_EMOJI or any(c.isspace() for c in text):
            raise UsageError(f"a reaction is one emoji: 1 to {MAX_EMOJI} characters without spaces")
        return
    if not text.strip():
        raise UsageError("the message is empty")
    if len(text) > MAX_TEXT:
        raise UsageError(f"the message has {len(text)} characters; at most {MAX_TEXT}")
