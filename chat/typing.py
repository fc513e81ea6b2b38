"""Typing notices: "bob is typing" in a room or a direct conversation, as ephemeral signals.

A front end calls :meth:`Typing.typed` on each keystroke in a conversation's
input; at most one notice goes out every `SEND_EVERY` seconds per
conversation (a signal, chat/signals.py: sealed, never stored). A notice heard
shows for `SHOWN_FOR` seconds, or until that person's message arrives; the
listeners hear ``("typing", {"conv_id", "peer_id"})`` for each notice.
"""

from __future__ import annotations

from typing import Any

from chat.signals import Signals
from mesh.wire.identity import decode_peer_id, encode_peer_id

#: at most one notice per conversation this often (seconds)
SEND_EVERY = 3.0
#: how long a notice heard shows (seconds): longer than SEND_EVERY, so steady typing shows steadily
SHOWN_FOR = 6.0


class Typing:
    """Who is typing where, as this peer hears it, and the notices it sends."""

    def __init__(self, signals: Signals) -> None:
        self.signals = signals
        self.chat = signals.chat
        self.clock = signals.node.clock
        self._sent: dict[str, float] = {}
        self._heard: dict[str, dict[str, float]] = {}  # conv_id -> peer_id -> when
        signals.handlers["typing"] = self._notice
        self.chat.listeners.append(self._message)

    def typed(self, conversation: str) -> bool:
        """A keystroke in `conversation` (a room or DM, by id or name): tell its people, if
        none was told lately. True when a notice went out."""
        conv = self.chat.conversation(conversation)  # an exact id, as front ends hold
        if conv is None:
            conv = self.chat.conversation(self.chat.resolve_conversation(conversation))
        if conv is None:
            return False
        conv_id = conv["conv_id"]
        now = self.clock()
        if now - self._sent.get(conv_id, -SEND_EVERY) < SEND_EVERY:
            return False
        if conv["kind"] == "dm":
            sent = self.signals.to_peer(decode_peer_id(conv["peer_id"]), "typing", {})
        else:
            sent = self.signals.to_room(conv_id, "typing", {})
        if sent:
            self._sent[conv_id] = now
        return sent

    def who(self, conv_id: str) -> list[str]:
        """The peers typing in a conversation now (their ids)."""
        now = self.clock()
        heard = self._heard.get(conv_id, {})
        for peer in [p for p, at in heard.items() if now - at >= SHOWN_FOR]:
            del heard[peer]
        return sorted(heard)

    def _notice(self, conv_id: str, author: bytes, body: dict[str, Any]) -> None:
        peer_id = encode_peer_id(author)
        self._heard.setdefault(conv_id, {})[peer_id] = self.clock()
        self.chat.listeners.emit("typing", {"conv_id": conv_id, "peer_id": peer_id})

    def _message(self, kind: str, data: dict[str, Any]) -> None:
        """A message from someone ends their typing notice in that conversation."""
        if kind == "message":
            self._heard.get(data["conv_id"], {}).pop(data["author"], None)
