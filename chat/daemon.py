"""A node serving its home: the node, its control socket, and the commands the CLI uses.

:class:`Daemon` is what ``meshnotes run`` starts, and what front ends embed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import time
from dataclasses import asdict
from typing import Any, Protocol

from chat.client import Verb
from chat.files.service import Files, FilesConfig
from chat.messages import Chat
from chat.presence import Presence
from chat.readstate import ReadState
from chat.signals import Signals
from chat.typing import Typing
from mesh.errors import MeshError, UsageError
from mesh.runtime.control import Command, ControlServer
from mesh.runtime.dials import DISCONNECT_HOLD
from mesh.runtime.home import Home
from mesh.runtime.node import Node, NodeConfig
from mesh.runtime.settings import KEYS, Settings
from mesh.storage.mailbox import Mailbox
from mesh.storage.roomlog import RoomLog
from mesh.storage.store import Store
from mesh.wire.address import PeerAddress
from mesh.wire.identity import Identity, decode_peer_id, encode_peer_id
from mesh.wire.invite import Invite, make_invite

MAX_PING_COUNT = 1000
#: how long ``meshnotes connect`` may wait for a dial's first outcome
MAX_CONNECT_WAIT = 60.0


class Extension(Protocol):
    """A layer above the mesh (notes, say) that runs inside a daemon.

    `attach` runs once the store and chat exist and before the node starts
    (register commands and handlers there); `start` after the node started;
    `stop` before chat and node stop.
    """

    async def attach(self, daemon: Daemon) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict[str, Any]:
        """Its part of ``status --json``; a "counters" key is merged into the node's."""
        ...


class Daemon:
    """A node bound to a home directory and reachable through its control socket."""

    def __init__(
        self,
        home: Home,
        identity: Identity,
        config: NodeConfig,
        extensions: list[Extension] | None = None,
        store_key: bytes | None = None,
        files: FilesConfig | None = None,
    ) -> None:
        """`store_key`: the key the home's database is encrypted with, from
        :meth:`mesh.runtime.home.Home.unlock` (None: it is not encrypted). `files`: what
        attachments may take (None: the home's meshnotes.toml says)."""
        self.home = home
        self.identity = identity
        self.store_key = store_key
        self.config = config
        self.extensions = list(extensions or [])
        self._node: Node | None = None
        self.control = ControlServer(home.control_socket)
        self.store: Store | None = None
        self._chat: Chat | None = None
        self._signals: Signals | None = None
        self.typing: Typing | None = None
        self.presence: Presence | None = None
        self.read_state: ReadState | None = None
        self.files_config = files
        self._files: Files | None = None
        self.running = False
        commands: dict[Verb, Command] = {
            Verb.ID: self._id,
            Verb.STATUS: self._status,
            Verb.PING: self._ping,
            Verb.CONNECT: self._connect,
            Verb.DISCONNECT: self._disconnect,
            Verb.FORGET: self._forget,
            Verb.CONTACTS_ADD: self._contacts_add,
            Verb.CONTACTS_LIST: self._contacts_list,
            Verb.CONTACTS_VERIFY: self._contacts_verify,
            Verb.CONTACTS_RENAME: self._contacts_rename,
            Verb.CONTACTS_REMOVE: self._contacts_remove,
            Verb.CONTACTS_BLOCK: self._contacts_block,
            Verb.DM: self._dm,
            Verb.SAY: self._say,
            Verb.HISTORY: self._history,
            Verb.ROOM_NEW: self._room_new,
            Verb.ROOM_INVITE: self._room_invite,
            Verb.ROOM_REMOVE: self._room_remove,
            Verb.ROOM_JOIN: self._room_join,
            Verb.ROOM_LEAVE: self._room_leave,
            Verb.ROOM_HANDOVER: self._room_handover,
            Verb.ROOM_LIST: self._room_list,
            Verb.INVITE: self._invite,
            Verb.INVITE_ACCEPT: self._invite_accept,
            Verb.DM_OPEN: self._dm_open,
            Verb.TYPING: self._typing,
            Verb.SEARCH: self._search,
            Verb.EDIT: self._edit,
            Verb.DELETE: self._delete,
            Verb.REPLY: self._reply,
            Verb.REACT: self._react,
            Verb.UNREAD: self._unread,
            Verb.READ: self._read,
            Verb.FILES_SEND: self._files_send,
            Verb.FILES_LIST: self._files_list,
            Verb.FILES_FETCH: self._files_fetch,
            Verb.FILES_SAVE: self._files_save,
            Verb.SUBSCRIBE: self._id,  # the stream's first reply: who the node is
        }
        for name, command in commands.items():
            self.control.register(name, command)

    @property
    def node(self) -> Node:
        """The node, made when the daemon starts (its mailbox and room log need the store)."""
        if self._node is None:
            raise UsageError("the node is not started")
        return self._node

    @property
    def signals(self) -> Signals:
        """Ephemeral signals (typing, cursors): chat/signals.py."""
        if self._signals is None:
            raise UsageError("the node is not started")
        return self._signals

    @property
    def files(self) -> Files:
        """Attachments: chat/files/."""
        if self._files is None:
            raise UsageError("the node is not started")
        return self._files

    @property
    def chat(self) -> Chat:
        if self._chat is None:
            raise UsageError("the node is not started")
        return self._chat

    async def __aenter__(self) -> Daemon:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.home.ensure()
        await self.control.start()  # first: refuses a second node on the same home
        try:
            self.store = self.home.open_store(self.store_key)
            # mail for the chat layer's contacts is kept apart from strangers' (it starts below)
            mailbox = Mailbox(
                self.store,
                is_contact=lambda peer: (
                    self._chat is not None and self._chat.contacts.is_contact(peer)
                ),
            )
            # the rooms the chat layer joined (it registers them with the node when made)
            roomlog = RoomLog(self.store, members=lambda: self.node.room_interests())
            self._node = Node(self.identity, self.config, mailbox=mailbox, roomlog=roomlog)
            self._chat = Chat(self._node, self.store)
            self._signals = Signals(self._chat)
            self.typing = Typing(self._signals)
            self.presence = Presence(self._node, self.store)
            self.read_state = ReadState(self._signals, _setting(self.home, "read_state"))
            config = self.files_config or _files_config(self.home)
            self._files = Files(self._chat, self.store, self.home.root / "files", config)
            self._files.listeners.append(functools.partial(self.control.publish, "files"))
            # what the front ends attached to the control socket hear
            self._chat.listeners.append(functools.partial(self.control.publish, "chat"))
            self._node.listeners.append(functools.partial(self.control.publish, "node"))
            for extension in self.extensions:
                await extension.attach(self)
            await self.node.start()
            self._chat.start()
            self._files.start()
            self.presence.start()
            for extension in self.extensions:
                await extension.start()
            self.running = True
        except BaseException:
            await self.control.stop()
            if self._chat is not None:
                await self._chat.stop()
            if self._node is not None:
                await self._node.stop()
            if self.store is not None:
                self.store.close()
            raise

    async def stop(self) -> None:
        self.running = False
        await self.control.stop()
        for extension in reversed(self.extensions):
            await extension.stop()
        if self.presence is not None:
            await self.presence.stop()
        if self._files is not None:
            await self._files.stop()
        if self._chat is not None:
            await self._chat.stop()
        if self._node is not None:
            await self._node.stop()
        if self.store is not None:
            self.store.close()

    # -- commands --------------------------------------------------------------

    async def _id(self, args: dict[str, Any]) -> dict[str, Any]:
        identity = self.node.identity
        return {
            "peer_id": identity.peer_id,
            "name": identity.name,
            "address": self.node.address,
            "addresses": self.node.addresses_for_others,
        }

    async def _status(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.status()

    def status(self) -> dict[str, Any]:
        """What ``status --json`` shows: the node's, the chat's and the extensions' state."""
        status = self.node.status()
        status["caches"]["control_refused"] = self.control.refused
        status["counters"].update(self.control.counters)
        chat = self.chat.status()
        status["counters"].update(chat.pop("counters"))
        status["chat"] = chat
        status["counters"].update(self.files.counters)
        status["files"] = self.files.status()
        for extension in self.extensions:
            extra = extension.status()
            status["counters"].update(extra.pop("counters", {}))
            status.update(extra)
        return status

    async def _ping(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        dest = self.chat.contacts.resolve(str(args["peer"]))
        count = int(args.get("count", 1))
        interval = float(args.get("interval", 0.2))
        timeout = float(args.get("timeout", 5.0))
        if not 1 <= count <= MAX_PING_COUNT:
            raise UsageError(f"--count must be 1..{MAX_PING_COUNT}")
        if not (0 <= interval <= 60 and 0 < timeout <= 300):
            raise UsageError("--interval must be 0..60 s and --timeout 0..300 s")
        replies: list[dict[str, Any]] = []
        for i in range(count):
            if i:
                await asyncio.sleep(interval)
            reply = await self.node.ping(dest, timeout=timeout)
            replies.append({"seq": i + 1, **(asdict(reply) if reply else {"lost": True})})
        return replies

    async def _connect(self, args: dict[str, Any]) -> dict[str, Any]:
        address = PeerAddress.parse(str(args["address"]))
        dial = self.node.connect(address)
        result: dict[str, Any] = {
            "dialing": str(address),
            "peer_id": encode_peer_id(address.peer_key),
        }
        wait = float(args.get("wait", 0))
        if not 0 <= wait <= MAX_CONNECT_WAIT:
            raise UsageError(f"--wait must be 0..{MAX_CONNECT_WAIT:g} s")
        if dial is not None and wait:
            result["dial"] = await self.node.dial_outcome(dial, wait)
        return result

    async def _disconnect(self, args: dict[str, Any]) -> dict[str, Any]:
        peer = self.chat.contacts.resolve(str(args["peer"]))
        closed = self.node.disconnect(peer)
        return {"peer_id": encode_peer_id(peer), "closed": closed, "hold_s": DISCONNECT_HOLD}

    async def _forget(self, args: dict[str, Any]) -> dict[str, Any]:
        dial = self.node.forget(str(args["address"]))
        return {"forgot": str(dial.address), "peer_id": encode_peer_id(dial.peer)}

    async def _contacts_add(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("name")
        return self.chat.contacts.add(str(args["peer"]), None if name is None else str(name))

    async def _contacts_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.presence is not None
        return [
            {**contact, **self.presence.of(decode_peer_id(contact["peer_id"]))}
            for contact in self.chat.contacts.all()
        ]

    async def _contacts_verify(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.chat.contacts.verify(str(args["peer"]), bool(args.get("verified", True)))

    async def _contacts_rename(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.chat.contacts.rename(str(args["peer"]), str(args["name"]))

    async def _contacts_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.chat.contacts.remove(str(args["peer"]))

    async def _contacts_block(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.chat.contacts.block(str(args["peer"]), bool(args.get("blocked", True)))

    async def _dm_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"conv_id": self.chat.direct_conversation(str(args["peer"]))}

    async def _typing(self, args: dict[str, Any]) -> dict[str, Any]:
        assert self.typing is not None
        return {"sent": self.typing.typed(str(args["conversation"]))}

    async def _dm(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.chat.send_direct(str(args["peer"]), str(args["text"]))}

    async def _say(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.chat.say(str(args["room"]), str(args["text"]))}

    async def _history(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        around = args.get("around")
        return self.chat.history(
            str(args["conversation"]),
            int(args.get("limit", 50)),
            None if around is None else str(around),
        )

    async def _search(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        conversation = args.get("conversation")
        return self.chat.search(
            str(args["query"]),
            None if conversation is None else str(conversation),
            int(args.get("limit", 20)),
        )

    async def _edit(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.chat.edit(str(args["msg_id"]), str(args["text"]))}

    async def _delete(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.chat.delete(str(args["msg_id"]))}

    async def _reply(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.chat.reply(str(args["msg_id"]), str(args["text"]))}

    async def _react(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.chat.react(str(args["msg_id"]), str(args["emoji"]))

    async def _unread(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return self.chat.unread()

    async def _read(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.chat.mark_read(str(args["conversation"]))

    async def _room_new(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"room_id": self.chat.rooms.new(str(args["name"]))}

    async def _room_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.chat.rooms.invite(str(args["room"]), str(args["peer"]))

    async def _room_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.chat.rooms.remove(str(args["room"]), str(args["peer"]))

    async def _room_join(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.chat.rooms.join(str(args["room"]))

    async def _room_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return self.chat.rooms.all()

    async def _room_leave(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.chat.rooms.leave(str(args["room"]))

    async def _room_handover(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.chat.rooms.hand_over(str(args["room"]), str(args["peer"]))

    async def _files_send(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self.files.send(str(args["to"]), str(args["path"]))

    async def _files_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return self.files.list()

    async def _files_fetch(self, args: dict[str, Any]) -> dict[str, Any]:
        progress = self.files.fetch(str(args["file"]))
        wait = float(args.get("wait", 0))
        if not 0 <= wait <= MAX_CONNECT_WAIT:
            raise UsageError(f"wait must be 0..{MAX_CONNECT_WAIT:g} s")
        return await self.files.wait(progress["file_id"], wait) if wait else progress

    async def _files_save(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self.files.save(str(args["file"]), str(args["out"]))

    # -- invites (the code's format: mesh/wire/invite.py) ------------------------

    async def make_invite(self) -> dict[str, Any]:
        """This node's invite code, signed by its identity, naming the addresses other devices
        can dial it at (as ``id`` lists them, the most widely reachable first)."""
        info = await self._id({})
        texts = info.get("addresses") or ([info["address"]] if info.get("address") else [])
        addresses: list[tuple[str, int]] = []
        for text in texts:
            with contextlib.suppress(UsageError):
                address = PeerAddress.parse(str(text))
                if not _unspecified(address.host):
                    addresses.append((address.host, address.port))
        now = time.time()
        code = make_invite(self.node.identity, addresses, now)
        invite = Invite.decode(code, now)
        return {
            "invite": code,
            "peer_id": invite.peer_id,
            "name": invite.name,
            "addresses": [str(a) for a in invite.peer_addresses()],
            "expires": invite.expires,
        }

    def accept_invite(self, code: str, add: bool, name: str | None = None) -> dict[str, Any]:
        """Check an invite code, make its peer a contact (with `add`), and dial its addresses.

        Raises InviteError for a corrupt, altered or expired code, before anything changes.
        """
        invite = Invite.decode(code, time.time())
        if invite.peer_key == self.node.identity.public_key:
            raise UsageError("that invite is this node's own")
        contact = None
        if add:
            contact = self.chat.contacts.add(invite.peer_id, name or invite.name or None)
        dialing = []
        for address in invite.peer_addresses():
            self.node.connect(address)
            dialing.append(str(address))
        shown = contact["name"] if contact else (name or invite.name)
        return {"peer_id": invite.peer_id, "name": shown, "dialing": dialing, "contact": contact}

    async def _invite(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self.make_invite()

    async def _invite_accept(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("name")
        return self.accept_invite(
            str(args["invite"]), bool(args.get("add")), None if name is None else str(name)
        )


def _unspecified(host: str) -> bool:
    """0.0.0.0 or :: — where a node listens on all interfaces, never where one is dialed."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _files_config(home: Home) -> FilesConfig:
    """What the home's meshnotes.toml lets attachments take (the defaults if it cannot say)."""
    try:
        values = Settings.load(home).values
    except MeshError:  # a broken file: `run` said so before the node started
        values = {key: default for key, (default, _) in KEYS.items()}
    return FilesConfig(
        auto_download=int(values["auto_download"]), budget=int(values["file_budget"])
    )


def _setting(home: Home, key: str) -> bool:
    """A yes/no setting of the home's meshnotes.toml (its default if the file cannot say)."""
    try:
        return bool(Settings.load(home).values[key])
    except MeshError:  # a broken file: `run` said so before the node started
        return bool(KEYS[key][0])
