"""Threat 6: kill -9 of node processes (`meshnotes run --headless`); a partition that heals.

Messages are sent through the control socket, as `meshnotes dm` does (without paying for a
process start per message); the ids it returns are what the CLI would have printed.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

from mesh.errors import MeshError
from mesh.runtime import control
from sim.hostile import TapProxy, full_or_ci, linked, notes_of, start_daemon
from tests.conftest import deadline, wait_until
from tests.hardening.conftest import record
from tests.integration.test_cli_line import Line


def call(line: Line, name: str, cmd: str, **args: object) -> object:
    return control.call(line.homes[name] / "control.sock", cmd, args, timeout=20)


def poll(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = deadline(timeout)
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def kill9(line: Line, name: str) -> None:
    proc = line.procs.pop(name)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def history(line: Line, name: str, peer: str) -> list[dict[str, object]]:
    return call(line, name, "history", conversation=line.ids[peer], limit=10_000)  # type: ignore[return-value]


def test_kill_9_of_the_relay_mid_stream_loses_no_message(tmp_path: Path) -> None:
    total = full_or_ci(1000, 100)
    line = Line(tmp_path)
    try:
        line.start()
        poll(
            lambda: any(r["dest"] == line.ids["C"] for r in call(line, "A", "status")["routes"]),
            15,
            "a route from A to C",
        )
        call(line, "C", "contacts.add", peer=line.ids["A"])
        sent = []
        for i in range(total):
            if i == total // 3:
                kill9(line, "B")
            if i == 2 * total // 3:
                line.start("B")  # same port: A and C redial it
            sent.append(call(line, "A", "dm", peer=line.ids["C"], text=f"message {i}")["id"])
        ids = set(sent)
        poll(lambda: {m["id"] for m in history(line, "C", "A")} >= ids, 60, "every DM at C")
        poll(
            lambda: all(m["status"] == "delivered" for m in history(line, "A", "C")),
            60,
            "every receipt at A",
        )
        got = [m for m in history(line, "C", "A")]
        assert len(got) == total, "a message shows twice"
        received = ids & {m["id"] for m in got}
        record(
            "relay_kill",
            {
                "sent": total,
                "received": len(received),
                "lost": total - len(received),
                "relay_kills": 1,
                "restarts": 1,
            },
        )
    finally:
        line.stop()


def test_kill_9_during_heavy_writes_keeps_the_database_whole(tmp_path: Path) -> None:
    rounds = full_or_ci(20, 3)
    line = Line(tmp_path)
    rng = random.Random(7)
    checked = {"sent": 0, "received": 0}
    try:
        line.start("AB")
        call(line, "A", "contacts.add", peer=line.ids["B"])
        call(line, "B", "contacts.add", peer=line.ids["A"])
        for round_ in range(rounds):
            shown: dict[str, list[str]] = {"A": [], "B": []}
            stop = threading.Event()

            def write(
                me: str,
                peer: str,
                stop: threading.Event = stop,
                shown: dict[str, list[str]] = shown,
                round_: int = round_,
            ) -> None:
                n = 0
                while not stop.is_set():
                    try:
                        result = call(
                            line, me, "dm", peer=line.ids[peer], text=f"r{round_} {me} {n}"
                        )
                    except MeshError:
                        return  # the node died under us: what it printed before counts
                    shown[me].append(result["id"])  # type: ignore[index]
                    n += 1

            writers = [threading.Thread(target=write, args=p) for p in (("A", "B"), ("B", "A"))]
            for w in writers:
                w.start()
            poll(lambda shown=shown: len(shown["A"]) >= 20, 20, "writes under way")
            time.sleep(rng.uniform(0.0, 0.5))  # kill at a random point of the write stream
            kill9(line, "A")
            stop.set()
            for w in writers:
                w.join(30)
            # B's messages that B shows as delivered were receipted by A: A had committed them
            delivered_at_b = [
                m["id"]
                for m in history(line, "B", "A")
                if m["author"] == line.ids["B"] and m["status"] == "delivered"
            ]
            db = sqlite3.connect(line.homes["A"] / "meshnotes.db")
            try:
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                have = {row[0] for row in db.execute("SELECT msg_id FROM messages")}
            finally:
                db.close()
            assert set(shown["A"]) <= have, "a DM shown as sent is missing after the crash"
            assert set(delivered_at_b) <= have, "a DM receipted by A is missing after the crash"
            checked["sent"] += len(shown["A"])
            checked["received"] += len(delivered_at_b)
            line.start("A")
        record(
            "write_kill",
            {
                "kills": rounds,
                "restarts": rounds,
                "integrity_ok": rounds,
                "shown_sent_checked": checked["sent"],
                "receipted_checked": checked["received"],
                "lost": 0,
            },
        )
    finally:
        line.stop()


async def test_a_partitioned_five_node_mesh_converges_after_healing(tmp_path: Path) -> None:
    """n0 - n1 -[cut]- n2 - n3 - n4: both sides chat and edit one note while apart."""
    names = [f"n{i}" for i in range(5)]
    daemons = [await start_daemon(tmp_path, names[0])]
    proxy: TapProxy | None = None
    for i in range(1, 5):
        target = daemons[i - 1].node.address or ""
        if i == 2:  # the n1 - n2 link runs through the cut
            proxy = TapProxy(daemons[1].node.listen_url or "")
            await proxy.start()
            target = proxy.address_for(target)
        daemons.append(await start_daemon(tmp_path, names[i], dial=[target]))
    admin, *members = daemons
    try:
        for i in range(4):
            await wait_until(lambda i=i: linked(daemons[i], daemons[i + 1]), what=f"link {i}")
        for m in members:
            m.chat.contacts.add(admin.node.identity.peer_id)
        room = admin.chat.rooms.new("all")
        for m in members:
            admin.chat.rooms.invite(room, m.node.identity.peer_id)
        await wait_until(
            lambda: all(
                len(d.chat.rooms.state(room).members) == 5
                and d.chat.rooms.document_key(room, 0) is not None
                for d in daemons
            ),
            timeout=20,
            what="everyone in the room",
        )
        note = notes_of(admin).new(room, "plan")
        await wait_until(
            lambda: all(_note_text(d, note) == "" and _has_note(d, note) for d in daemons),
            what="the note everywhere",
        )
        assert proxy is not None
        await proxy.cut()
        await wait_until(lambda: not linked(daemons[1], daemons[2]), what="the partition")
        admin.chat.say(room, "from the left")
        daemons[4].chat.say(room, "from the right")
        notes_of(admin).append(note, "L")
        notes_of(daemons[4]).append(note, "R")
        for n in (admin, daemons[4]):
            notes_of(n).flush(note)
        proxy.heal()
        await wait_until(
            lambda: all(
                sorted(m["text"] for m in d.chat.history(room))
                == ["from the left", "from the right"]
                for d in daemons
            ),
            timeout=30,
            what="chat converged",
        )
        await wait_until(
            lambda: (
                len({_note_text(d, note) for d in daemons}) == 1
                and sorted(_note_text(admin, note)) == ["L", "R"]
            ),
            timeout=30,
            what="the note converged",
        )
    finally:
        for d in reversed(daemons):
            await d.stop()
        if proxy is not None:
            await proxy.stop()


def _has_note(daemon, note: str) -> bool:  # type: ignore[no-untyped-def]
    return any(n["note_id"] == note for n in notes_of(daemon).all())


def _note_text(daemon, note: str) -> str:  # type: ignore[no-untyped-def]
    try:
        return str(notes_of(daemon).cat(note))
    except MeshError:
        return ""
