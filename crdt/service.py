"""Notes inside a running node: the control commands, the optional Yjs bridge, and the timers.

The notes layer never schedules on the event loop itself: it says when it
has work due (:meth:`crdt.notes.Notes.next_deadline`) and wakes this service
when that moves earlier; one task here waits for it and runs it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from typing import Any

from chat.daemon import Daemon
from crdt.awareness import Cursors
from crdt.bridge import YjsBridge, bridge_token
from crdt.client import NoteVerb
from crdt.errors import NoteUsageError
from crdt.notes import Notes
from crdt.payload import NoteReader
from mesh.runtime.control import Command

log = logging.getLogger("meshnotes.notes")


class NotesService:
    """A daemon extension: ``Daemon(..., extensions=[NotesService(bridge=...)])``."""

    def __init__(self, bridge: tuple[str, int] | None = None) -> None:
        self.bridge_address = bridge
        self.notes: Notes | None = None
        self.cursors: Cursors | None = None
        self.bridge: YjsBridge | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def attach(self, daemon: Daemon) -> None:
        assert daemon.store is not None
        self.notes = Notes(daemon.chat, daemon.store, wake=self._wake.set)
        if daemon.node.roomlog is not None:
            # relays read snapshot headers too: whose snapshots we take is ours to say
            daemon.node.roomlog.read_snapshots(NoteReader(self.notes.snapshots.authors))
        commands: dict[NoteVerb, Command] = {
            NoteVerb.NEW: self._new,
            NoteVerb.LIST: self._list,
            NoteVerb.CAT: self._cat,
            NoteVerb.APPEND: self._append,
            NoteVerb.IMPORT: self._import,
            NoteVerb.EXPORT: self._export,
            NoteVerb.RENAME: self._rename,
            NoteVerb.STATE: self._state,
            NoteVerb.EDIT: self._edit,
            NoteVerb.CURSOR: self._cursor,
            NoteVerb.HISTORY: self._history,
            NoteVerb.VERSION: self._version,
            NoteVerb.RESTORE: self._restore,
            NoteVerb.DELETE: self._delete,
            NoteVerb.UNDELETE: self._undelete,
        }
        self.cursors = Cursors(self.notes, daemon.signals, daemon.identity.name)
        for name, command in commands.items():
            daemon.control.register(name, command)
        # front ends attached to the control socket hear the notes' events, and the updates
        # of the notes they follow (each note id is a topic)
        control = daemon.control
        self.notes.listeners.append(lambda kind, data: control.publish("notes", kind, data))
        self.notes.update_hooks.append(
            lambda note_id, update, origin: control.publish(
                "notes",
                "note_update",
                {
                    "note_id": note_id,
                    "update": base64.b64encode(update).decode(),
                    "origin": origin if isinstance(origin, str) else None,
                },
                topic=note_id,
            )
        )
        if self.bridge_address is not None:
            host, port = self.bridge_address
            token = bridge_token(daemon.home.root / "bridge.token")
            self.bridge = YjsBridge(self.notes, host, port, token, self.cursors)

    async def start(self) -> None:
        assert self.notes is not None
        self.notes.start()
        self._task = asyncio.create_task(self._run_due(self.notes))
        if self.bridge is not None:
            await self.bridge.start()

    async def stop(self) -> None:
        if self.bridge is not None:
            await self.bridge.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.cursors is not None:
            self.cursors.stop()
        if self.notes is not None:
            self.notes.stop()

    async def _run_due(self, notes: Notes) -> None:
        """Run the notes' due work when it is due, or when woken for earlier work."""
        while True:
            self._wake.clear()
            deadline = notes.next_deadline()
            delay = None if deadline is None else deadline - notes.node.clock()
            if delay is None or delay > 0:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancel of stop()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
            else:
                await asyncio.sleep(0)  # due now: after what the current loop turn reads
            try:
                notes.run_due(notes.node.clock())
            except Exception:  # one failure must not stop the edits and snapshots to come
                log.exception("the notes' due work failed")

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
        return self._notes().all(None if room is None else str(room), bool(args.get("deleted")))

    async def _delete(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"note_id": self._notes().delete(str(args["note"])), "deleted": True}

    async def _undelete(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"note_id": self._notes().undelete(str(args["note"])), "deleted": False}

    async def _cat(self, args: dict[str, Any]) -> dict[str, Any]:
        notes = self._notes()
        note_id = notes.resolve(str(args["note"]))
        return {"note_id": note_id, "text": notes.cat(note_id)}

    async def _append(self, args: dict[str, Any]) -> dict[str, Any]:
        notes = self._notes()
        note_id = notes.resolve(str(args["note"]))
        text, current = str(args["text"]), notes.cat(note_id)
        if current and not current.endswith("\n"):
            text = "\n" + text  # an appended line, not text glued onto the last one
        notes.append(note_id, text)
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

    async def _rename(self, args: dict[str, Any]) -> dict[str, Any]:
        notes = self._notes()
        note_id = notes.resolve(str(args["note"]))
        notes.rename(note_id, str(args["title"]))
        return {"note_id": note_id, "title": notes.get(note_id).title}

    async def _state(self, args: dict[str, Any]) -> dict[str, Any]:
        notes = self._notes()
        note_id = notes.resolve(str(args["note"]))
        state = notes.get(note_id).update_since(None)
        return {"note_id": note_id, "state": base64.b64encode(state).decode()}

    async def _edit(self, args: dict[str, Any]) -> dict[str, Any]:
        """An edit made in a front end's copy of the note: applied and sent as ours.

        `origin` names the front end, so that the update it made is not sent back to it.
        """
        notes = self._notes()
        note_id = notes.resolve(str(args["note"]))
        try:
            update = base64.b64decode(str(args["update"]), validate=True)
        except binascii.Error as exc:
            raise NoteUsageError(f"the edit is not base64: {exc}") from exc
        notes.apply_external(note_id, update, str(args.get("origin") or "control"))
        return {"note_id": note_id}

    async def _cursor(self, args: dict[str, Any]) -> dict[str, Any]:
        """Where this peer's cursor is in a note (None: it shows none): shown to the others."""
        assert self.cursors is not None
        note_id = self._notes().resolve(str(args["note"]))
        anchor = args.get("anchor")
        if anchor is None:
            self.cursors.clear_cursor(note_id)
        else:
            head = args.get("head")
            self.cursors.set_cursor(note_id, int(anchor), None if head is None else int(head))
        return {"note_id": note_id}

    async def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        return note_history(self._notes(), str(args["note"]))

    async def _version(self, args: dict[str, Any]) -> dict[str, Any]:
        return note_version(self._notes(), str(args["note"]), int(args["version"]))

    async def _restore(self, args: dict[str, Any]) -> dict[str, Any]:
        notes, version = self._notes(), int(args["version"])
        note_id = notes.restore(str(args["note"]), version)
        return {"note_id": note_id, "version": version, "length": len(notes.cat(note_id))}


def note_history(notes: Notes, note: str) -> dict[str, Any]:
    """What ``note history`` shows, from a running node's notes or a reader's."""
    note_id = notes.resolve(note)
    return {"note_id": note_id, "versions": notes.versions.all(note_id)}


def note_version(notes: Notes, note: str, version: int) -> dict[str, Any]:
    """What ``note cat --version`` shows, from a running node's notes or a reader's."""
    note_id = notes.resolve(note)
    return {"note_id": note_id, "version": version, "text": notes.versions.text(note_id, version)}
