"""Notes inside a running node: the control commands and the optional Yjs bridge."""

from __future__ import annotations

from typing import Any

from chat.daemon import Daemon
from crdt.bridge import YjsBridge, bridge_token
from crdt.client import NoteVerb
from crdt.notes import Notes
from mesh.runtime.control import Command


class NotesService:
    """A daemon extension: ``Daemon(..., extensions=[NotesService(bridge=...)])``."""

    def __init__(self, bridge: tuple[str, int] | None = None) -> None:
        self.bridge_address = bridge
        self.notes: Notes | None = None
        self.bridge: YjsBridge | None = None

    async def attach(self, daemon: Daemon) -> None:
        assert daemon.store is not None
        self.notes = Notes(daemon.chat, daemon.store)
        commands: dict[NoteVerb, Command] = {
            NoteVerb.NEW: self._new,
            NoteVerb.LIST: self._list,
            NoteVerb.CAT: self._cat,
            NoteVerb.APPEND: self._append,
            NoteVerb.IMPORT: self._import,
            NoteVerb.EXPORT: self._export,
        }
        for name, command in commands.items():
            daemon.control.register(name, command)
        if self.bridge_address is not None:
            host, port = self.bridge_address
            token = bridge_token(daemon.home.root / "bridge.token")
            self.bridge = YjsBridge(self.notes, host, port, token)

    async def start(self) -> None:
        assert self.notes is not None
        self.notes.start()
        if self.bridge is not None:
            await self.bridge.start()

    async def stop(self) -> None:
        if self.bridge is not None:
            await self.bridge.stop()
        if self.notes is not None:
            self.notes.stop()

    def status(self) -> dict[str, Any]:
        if self.notes is None:
            return {}
        notes = self.notes.status()
        counters = dict(notes.pop("counters"))
        if self.bridge is not None:
            counters.update(self.bridge.counters)
            notes["bridge"] = self.bridge.url
        return {"notes": notes, "counters": counters}

    def _notes(self) -> Notes:
        assert self.notes is not None
        return self.notes

    async def _new(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"note_id": self._notes().new(str(args["room"]), str(args["title"]))}

    async def _list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        room = args.get("room")
        return self._notes().all(None if room is None else str(room))

    async def _cat(self, args: dict[str, Any]) -> dict[str, Any]:
        notes = self._notes()
        note_id = notes.resolve(str(args["note"]))
        return {"note_id": note_id, "text": notes.cat(note_id)}

    async def _append(self, args: dict[str, Any]) -> dict[str, Any]:
        notes = self._notes()
        note_id = notes.resolve(str(args["note"]))
        notes.append(note_id, str(args["text"]))
        return {"note_id": note_id, "length": len(notes.cat(note_id))}

    async def _import(self, args: dict[str, Any]) -> dict[str, Any]:
        note_id = self._notes().import_text(
            str(args["room"]), str(args["title"]), str(args["text"])
        )
        return {"note_id": note_id}

    async def _export(self, args: dict[str, Any]) -> dict[str, Any]:
        notes = self._notes()
        note_id = notes.resolve(str(args["note"]))
        return {"note_id": note_id, "text": notes.cat(note_id)}
