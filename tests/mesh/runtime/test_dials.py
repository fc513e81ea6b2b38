"""The dial table's states (mesh/runtime/dials.py), stepped with `now` passed in."""

from __future__ import annotations

import nacl.signing

from mesh.runtime.dialfailure import LINK_LOST, DialFailure, Reason
from mesh.runtime.dials import Dials, DialState
from mesh.wire.address import PeerAddress
from mesh.wire.identity import encode_peer_id

KEY = nacl.signing.SigningKey(bytes(range(32))).verify_key.encode()
ADDRESS = PeerAddress("127.0.0.1", 7001, KEY)
REFUSED = DialFailure(Reason.REFUSED, "refused: nothing listens at that address")


def test_a_failed_attempt_waits_then_connects_again() -> None:
    dials = Dials()
    dial = dials.start(ADDRESS, "connect", None, now=100.0)
    dials.attempting(dial, 100.0)
    assert dials.failed(dial, REFUSED, next_try=102.5, now=100.0) is False
    status = dial.status(now=101.0)
    assert status == {
        "address": str(ADDRESS),
        "peer_id": encode_peer_id(KEY),
        "source": "connect",
        "state": "waiting",
        "attempts": 1,
        "failures_in_row": 1,
        "last_error": "refused: nothing listens at that address",
        "reason": "refused",
        "next_try_in": 1.5,
    }
    dials.attempting(dial, 102.5)
    assert dial.state is DialState.CONNECTING
    dials.linked(dial, 103.0)
    assert dial.status(103.0)["state"] == "linked"
    assert dial.failures_in_row == 0 and dial.last_error is None
    dials.lost(dial, LINK_LOST, next_try=104.0, now=103.5)
    assert dial.status(103.5)["last_error"] == "link lost: redialing"


def test_a_learned_address_is_given_up_after_its_attempts() -> None:
    dials = Dials()
    dial = dials.start(ADDRESS, "address record", 2, now=0.0)
    for _ in range(2):
        dials.attempting(dial, 0.0)
        gave_up = dials.failed(dial, REFUSED, next_try=1.0, now=0.0)
    assert gave_up and dial.state is DialState.GIVEN_UP
    assert dial.status(0.0)["next_try_in"] is None
    again = dials.start(ADDRESS, "address record", 2, now=5.0)  # learned again: a fresh dial
    assert again is not dial and again.attempts == 0


def test_a_hold_keeps_automatic_sources_off_until_an_explicit_dial() -> None:
    dials = Dials()
    dial = dials.start(ADDRESS, "peer", None, now=0.0)
    dials.hold(KEY, until=600.0, now=0.0)
    assert dial.status(0.0)["state"] == "held" and dial.status(0.0)["next_try_in"] == 600.0
    assert not dials.may_dial(KEY, "lan", now=10.0)
    assert dials.may_dial(KEY, "lan", now=601.0)
    assert dials.may_dial(KEY, "connect", now=10.0)
    assert dials.start(ADDRESS, "connect", None, now=10.0) is dial
    assert dial.held_until is None


def test_forget_removes_the_dial_and_keeps_automatic_sources_off() -> None:
    dials = Dials()
    dials.start(ADDRESS, "lan", 3, now=0.0)
    assert [d.address for d in dials.find(ADDRESS.url)] == [ADDRESS]
    assert [d.address for d in dials.find(encode_peer_id(KEY)[:8])] == [ADDRESS]
    assert dials.find("ws://127.0.0.1:1") == []
    forgotten = dials.forget(KEY)
    assert forgotten is not None and dials.get(KEY) is None
    assert not dials.may_dial(KEY, "address record", now=1.0)
    dials.start(ADDRESS, "connect", None, now=2.0)
    assert dials.may_dial(KEY, "lan", now=2.0)


def test_a_dial_on_its_first_address_keeps_it_and_a_failing_one_moves() -> None:
    dials = Dials()
    first = dials.start(ADDRESS, "invite", None, now=0.0)
    other = PeerAddress("10.0.0.2", 7001, KEY)
    assert dials.start(other, "invite", None, now=0.0) is first  # still trying the best one
    dials.attempting(first, 0.0)
    dials.failed(first, REFUSED, next_try=1.0, now=0.0)
    assert first.address == other  # the failure moved it on to the invite's next address
    dials.attempting(first, 1.0)
    dials.failed(first, REFUSED, next_try=2.0, now=1.0)
    elsewhere = PeerAddress("10.0.0.3", 7001, KEY)
    moved = dials.start(elsewhere, "connect", None, now=1.5)  # a new address for a failing dial
    assert moved is not first and moved.address == elsewhere


def test_an_invites_addresses_are_tried_in_turn_after_failures() -> None:
    dials = Dials()
    lan, vpn = PeerAddress("10.0.0.2", 7001, KEY), PeerAddress("10.8.0.2", 7001, KEY)
    dial = dials.start(ADDRESS, "invite", None, now=0.0)
    for address in (lan, vpn, lan):  # the invite's other addresses, one named twice
        assert dials.start(address, "invite", None, now=0.0) is dial
    tried = []
    for step in range(4):
        tried.append(dial.address)
        dials.attempting(dial, float(step))
        dials.failed(dial, REFUSED, next_try=step + 0.5, now=float(step))
    assert tried == [ADDRESS, lan, vpn, ADDRESS]
    dials.attempting(dial, 4.0)
    dials.linked(dial, 4.0)
    assert dial.status(4.0)["address"] == str(lan) and dial.state is DialState.LINKED
