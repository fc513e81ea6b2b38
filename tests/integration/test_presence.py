"""Presence: online while a path is known, last seen when something of the peer's arrived."""

from __future__ import annotations

import asyncio
import time

from chat.presence import WRITE_EVERY, last_seen
from mesh.runtime import control
from mesh.wire.identity import Identity
from tests.integration.harness import Mesh
from tests.waiting import wait_until


async def test_a_contact_is_online_then_last_seen_and_it_survives_a_restart(mesh: Mesh) -> None:
    await mesh.line("A", "B", "C")
    a = mesh["A"]
    a.chat.contacts.add(mesh.ids["C"], "carol")
    c_key = mesh["C"].node.identity.public_key
    assert a.presence is not None
    await wait_until(lambda: a.presence.of(c_key)["online"], what="C online at A")
    before = time.time()
    mesh["C"].chat.send_direct(mesh.ids["A"], "hi")  # something of C's arrives
    await wait_until(lambda: len(a.chat.history("carol")) == 1, what="C's message")
    contacts = await asyncio.to_thread(
        control.call, a.home.control_socket, "contacts.list", None, 10
    )
    assert [(c["peer_id"], c["online"]) for c in contacts] == [(mesh.ids["C"], True)]
    seen = last_seen(a.store, mesh.ids["C"])  # type: ignore[arg-type]
    assert seen is not None and before - WRITE_EVERY <= seen <= time.time()

    await mesh.stop("C")
    await mesh.stop("B")  # A loses every path to C
    await wait_until(lambda: not a.presence.of(c_key)["online"], timeout=20, what="C offline")
    assert a.presence.of(c_key)["last_seen"] == seen
    await mesh.stop("A")
    await mesh.start("A")
    again = mesh["A"].presence
    assert again is not None
    assert again.of(c_key) == {"online": False, "last_seen": seen}


async def test_a_peer_never_heard_from_was_never_seen(mesh: Mesh) -> None:
    await mesh.start("A")
    a = mesh["A"]
    stranger = Identity.generate("stranger")
    a.chat.contacts.add(stranger.peer_id, "stranger")
    assert a.presence is not None
    a.presence.sweep()  # no path to it: not seen
    assert a.presence.of(stranger.public_key) == {"online": False, "last_seen": None}
