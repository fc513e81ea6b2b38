"""The chat node's control verbs, each named once, and a typed client that calls them.

:class:`chat.daemon.Daemon` serves the :class:`Verb` names on the home's
control socket (:mod:`mesh.runtime.control`); front ends call them through
:class:`ChatClient`, one method per verb, and never spell a name themselves.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from mesh.runtime import control

#: how long a verb may take before the client gives up on the node
TIMEOUT = 30.0


class Verb(StrEnum):
    """The control verbs of a node and its chat layer (the names on the wire)."""

    ID = "id"
    STATUS = "status"
    PING = "ping"
    CONNECT = "connect"
    CONTACTS_ADD = "contacts.add"
    CONTACTS_LIST = "contacts.list"
    CONTACTS_VERIFY = "contacts.verify"
    CONTACTS_RENAME = "contacts.rename"
    CONTACTS_REMOVE = "contacts.remove"
    CONTACTS_BLOCK = "contacts.block"
    DM = "dm"
    SAY = "say"
    HISTORY = "history"
    ROOM_NEW = "room.new"
    ROOM_INVITE = "room.invite"
    ROOM_REMOVE = "room.remove"
    ROOM_JOIN = "room.join"
    ROOM_LEAVE = "room.leave"
    ROOM_HANDOVER = "room.handover"
    ROOM_LIST = "room.list"
    DISCONNECT = "disconnect"
    FORGET = "forget"
    INVITE = "invite"
    INVITE_ACCEPT = "invite.accept"
    DM_OPEN = "dm.open"
    TYPING = "typing"
    SEARCH = "search"
    EDIT = "edit"
    DELETE = "delete"
    REPLY = "reply"
    REACT = "react"
    UNREAD = "unread"
    READ = "read"
    #: attachments (chat/files/)
    FILES_SEND = "files.send"
    FILES_LIST = "files.list"
    FILES_FETCH = "files.fetch"
    FILES_SAVE = "files.save"
    #: the event stream (see mesh/runtime/control.py); its reply is what ID answers
    SUBSCRIBE = control.SUBSCRIBE


class ChatClient:
    """Calls a running node's chat verbs over the control socket at `socket` (blocking).

    Every method raises NodeNotRunningError when no node answers, and
    MeshError with the node's one-line message when the verb fails.
    """

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def call(self, verb: str, args: dict[str, Any] | None = None, timeout: float = TIMEOUT) -> Any:
        return control.call(self.socket, verb, args, timeout=timeout)

    def identity(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """{"peer_id", "name", "address", "addresses"} of the running node (`addresses`: what
        other devices can dial, non-loopback first; `address` the first of them)."""
        result: dict[str, Any] = self.call(Verb.ID, timeout=timeout)
        return result

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call(Verb.STATUS)
        return result

    def ping(self, peer: str, count: int, interval: float, timeout: float) -> list[dict[str, Any]]:
        """`count` pings, `interval` s apart, each waiting `timeout` s: one reply dict each."""
        request = {"peer": peer, "count": count, "interval": interval, "timeout": timeout}
        wait = count * (timeout + interval) + 10
        result: list[dict[str, Any]] = self.call(Verb.PING, request, timeout=wait)
        return result

    def connect(self, address: str, wait: float = 0.0) -> dict[str, Any]:
        """Dial `address`; with `wait`, up to that many seconds for it to link or fail once:
        {"dialing", "peer_id", "dial"} (`dial`: the dial as ``status --json`` lists it)."""
        request = {"address": address, "wait": wait}
        result: dict[str, Any] = self.call(Verb.CONNECT, request, timeout=TIMEOUT + wait)
        return result

    def disconnect(self, peer: str) -> dict[str, Any]:
        """Close the links with `peer`, no redial for a while: {"peer_id", "closed", "hold_s"}."""
        result: dict[str, Any] = self.call(Verb.DISCONNECT, {"peer": peer})
        return result

    def forget(self, address: str) -> dict[str, Any]:
        """Stop dialing `address`: {"forgot", "peer_id"}."""
        result: dict[str, Any] = self.call(Verb.FORGET, {"address": address})
        return result

    def contacts_add(self, peer: str, name: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.call(Verb.CONTACTS_ADD, {"peer": peer, "name": name})
        return result

    def contacts_list(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call(Verb.CONTACTS_LIST)
        return result

    def contacts_verify(self, peer: str, verified: bool = True) -> dict[str, Any]:
        request = {"peer": peer, "verified": verified}
        result: dict[str, Any] = self.call(Verb.CONTACTS_VERIFY, request)
        return result

    def contacts_rename(self, peer: str, name: str) -> dict[str, Any]:
        """Give a contact a new nickname: the contact as ``contacts --json`` lists it."""
        result: dict[str, Any] = self.call(Verb.CONTACTS_RENAME, {"peer": peer, "name": name})
        return result

    def contacts_remove(self, peer: str) -> dict[str, Any]:
        """Remove a contact: the contact as it was."""
        result: dict[str, Any] = self.call(Verb.CONTACTS_REMOVE, {"peer": peer})
        return result

    def contacts_block(self, peer: str, blocked: bool = True) -> dict[str, Any]:
        """Block (or unblock) a peer: {"peer_id", "name", "blocked"}."""
        request = {"peer": peer, "blocked": blocked}
        result: dict[str, Any] = self.call(Verb.CONTACTS_BLOCK, request)
        return result

    def dm_open(self, peer: str) -> dict[str, Any]:
        """{"conv_id"} of the direct conversation with `peer` (started if new)."""
        result: dict[str, Any] = self.call(Verb.DM_OPEN, {"peer": peer})
        return result

    def typing(self, conversation: str) -> dict[str, Any]:
        """Tell a conversation's people that you are typing: {"sent"} (False: told lately)."""
        result: dict[str, Any] = self.call(Verb.TYPING, {"conversation": conversation})
        return result

    def dm(self, peer: str, text: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(Verb.DM, {"peer": peer, "text": text})
        return result

    def say(self, room: str, text: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(Verb.SAY, {"room": room, "text": text})
        return result

    def history(
        self, conversation: str, limit: int = 50, around: str | None = None
    ) -> list[dict[str, Any]]:
        request = {"conversation": conversation, "limit": limit, "around": around}
        result: list[dict[str, Any]] = self.call(Verb.HISTORY, request)
        return result

    def search(
        self, query: str, conversation: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """[{id, conv, author, text, ts}] matching `query`, best first."""
        request = {"query": query, "conversation": conversation, "limit": limit}
        result: list[dict[str, Any]] = self.call(Verb.SEARCH, request)
        return result

    def edit(self, msg_id: str, text: str) -> dict[str, Any]:
        """{"id"} of the edit replacing the text of a message of yours."""
        result: dict[str, Any] = self.call(Verb.EDIT, {"msg_id": msg_id, "text": text})
        return result

    def delete(self, msg_id: str) -> dict[str, Any]:
        """{"id"} of the delete of a message of yours, for everyone."""
        result: dict[str, Any] = self.call(Verb.DELETE, {"msg_id": msg_id})
        return result

    def reply(self, msg_id: str, text: str) -> dict[str, Any]:
        """{"id"} of a reply to a message, in its conversation."""
        result: dict[str, Any] = self.call(Verb.REPLY, {"msg_id": msg_id, "text": text})
        return result

    def react(self, msg_id: str, emoji: str) -> dict[str, Any]:
        """Toggle a reaction: {"id", "msg_id", "emoji", "on"}."""
        result: dict[str, Any] = self.call(Verb.REACT, {"msg_id": msg_id, "emoji": emoji})
        return result

    def unread(self) -> list[dict[str, Any]]:
        """[{conv, unread, mentions}] for each conversation with unread messages."""
        result: list[dict[str, Any]] = self.call(Verb.UNREAD)
        return result

    def mark_read(self, conversation: str) -> dict[str, Any]:
        """Mark everything in a conversation read: {"conv"}."""
        result: dict[str, Any] = self.call(Verb.READ, {"conversation": conversation})
        return result

    def room_new(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(Verb.ROOM_NEW, {"name": name})
        return result

    def room_invite(self, room: str, peer: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(Verb.ROOM_INVITE, {"room": room, "peer": peer})
        return result

    def room_remove(self, room: str, peer: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(Verb.ROOM_REMOVE, {"room": room, "peer": peer})
        return result

    def room_join(self, room: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(Verb.ROOM_JOIN, {"room": room})
        return result

    def room_leave(self, room: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(Verb.ROOM_LEAVE, {"room": room})
        return result

    def room_handover(self, room: str, peer: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(Verb.ROOM_HANDOVER, {"room": room, "peer": peer})
        return result

    def room_list(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call(Verb.ROOM_LIST)
        return result

    def invite(self) -> dict[str, Any]:
        """{"invite", "peer_id", "name", "addresses", "expires"}: the node's signed invite code."""
        result: dict[str, Any] = self.call(Verb.INVITE)
        return result

    def invite_accept(self, invite: str, add: bool, name: str | None = None) -> dict[str, Any]:
        """Dial an invite's addresses and, with `add`, make it a contact (named `name`, else the
        invite's name): {"peer_id", "name", "dialing", "contact"}."""
        request = {"invite": invite, "add": add, "name": name}
        result: dict[str, Any] = self.call(Verb.INVITE_ACCEPT, request)
        return result

    def send_file(self, to: str, path: str) -> dict[str, Any]:
        """Seal and announce a file (absolute path) to a room or peer: {"file_id", "message_id"}."""
        result: dict[str, Any] = self.call(Verb.FILES_SEND, {"to": to, "path": path}, timeout=600)
        return result

    def files_list(self) -> list[dict[str, Any]]:
        """[{file_id, name, size, state, have_bytes, ...}], newest first."""
        result: list[dict[str, Any]] = self.call(Verb.FILES_LIST)
        return result

    def files_fetch(self, file: str, wait: float = 0.0) -> dict[str, Any]:
        """Start fetching a file (id or prefix), wait up to `wait` s for it; its progress."""
        request = {"file": file, "wait": wait}
        result: dict[str, Any] = self.call(Verb.FILES_FETCH, request, timeout=TIMEOUT + wait)
        return result

    def files_save(self, file: str, out: str) -> dict[str, Any]:
        """Write a kept file to `out` (absolute; a directory: under its name): {"path", ...}."""
        request = {"file": file, "out": out}
        result: dict[str, Any] = self.call(Verb.FILES_SAVE, request, timeout=600)
        return result
