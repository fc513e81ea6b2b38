"""A real relay records everything it passes between two real nodes; later, both identity
keys open none of it (forward secrecy of the pairwise sessions, chat/sessions.py)."""

from __future__ import annotations

from mesh.wire.envelope import Envelope, EnvelopeType
from tests.chat.test_forward_secrecy import identity_only, static_boxes_opened
from tests.conftest import wait_until
from tests.integration.harness import Mesh, room_with


def knows_prekey(mesh: Mesh, who: str, of: str) -> bool:
    rows = mesh[who].chat.store.query(
        "SELECT 1 FROM peer_prekeys WHERE peer_id = ?", (mesh.ids[of],)
    )
    return bool(rows)


async def test_a_recording_relay_given_both_identity_keys_opens_nothing(mesh: Mesh) -> None:
    a, r, b = await mesh.line("A", "R", "B")
    frames: list[bytes] = []
    route_burst = r.node.route_burst

    def recording(conn, burst, verdicts):  # type: ignore[no-untyped-def]
        frames.extend(burst)
        return route_burst(conn, burst, verdicts)

    r.node.route_burst = recording  # type: ignore[method-assign]
    # each learns the other's signed prekey from its address record, relayed by R
    await wait_until(lambda: knows_prekey(mesh, "A", "B") and knows_prekey(mesh, "B", "A"))
    room = await room_with(mesh, "A", ["B"])  # invitation, join, events, document keys
    for i in range(3):
        a.chat.send_direct(mesh.ids["B"], f"dm from a {i}")
        b.chat.send_direct(mesh.ids["A"], f"dm from b {i}")
        a.chat.say(room, f"room from a {i}")
        b.chat.say(room, f"room from b {i}")
    for daemon, peer in ((a, "B"), (b, "A")):
        await wait_until(
            lambda d=daemon, p=peer: (
                len(d.chat.history(mesh.ids[p])) == 6 and len(d.chat.history(room)) == 6
            ),
            what="every message at both ends",
        )
    recorded = [Envelope.decode(frame) for frame in frames]
    private = [e for e in recorded if e.type in (EnvelopeType.CHAT, EnvelopeType.CONTROL)]
    assert len(private) >= 14  # 6 direct, 6 in the room, the room's control messages
    assert identity_only(a.node.identity, recorded) == []
    assert identity_only(b.node.identity, recorded) == []
    assert static_boxes_opened(a.node.identity, b.node.identity, recorded) == 0
    for daemon in (a, b):
        assert "session_started_without_prekey" not in daemon.chat.counters
