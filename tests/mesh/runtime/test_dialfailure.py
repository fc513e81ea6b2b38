"""Dial failures in words, from what the dialer observed (mesh/runtime/dialfailure.py)."""

from __future__ import annotations

import errno

import pytest

from mesh.runtime.dialfailure import Observation, Reason, Stage, classify


@pytest.mark.parametrize(
    ("seen", "reason", "words"),
    [
        (Observation(Stage.CONNECT, errno=errno.ECONNREFUSED), Reason.REFUSED, "refused"),
        (Observation(Stage.CONNECT, errno=errno.ECONNRESET), Reason.REFUSED, "reset"),
        (Observation(Stage.CONNECT, errno=errno.EHOSTUNREACH), Reason.UNREACHABLE, "no route"),
        (Observation(Stage.CONNECT, errno=errno.ENETUNREACH), Reason.UNREACHABLE, "unreachable"),
        (Observation(Stage.CONNECT, unknown_host=True), Reason.UNKNOWN_HOST, "does not resolve"),
        (Observation(Stage.CONNECT, timed_out=True), Reason.TIMED_OUT, "did not answer"),
        (Observation(Stage.CONNECT, errno=errno.ETIMEDOUT), Reason.TIMED_OUT, "timed out"),
        (Observation(Stage.CONNECT, errno=errno.EPERM), Reason.OTHER, "EPERM"),
        (Observation(Stage.UPGRADE, http_status=404), Reason.HTTP, "answered 404"),
        (Observation(Stage.UPGRADE, detail="bad status line"), Reason.HTTP, "no websocket"),
        (Observation(Stage.UPGRADE, tls=True, detail="WRONG_VERSION"), Reason.TLS, "TLS error"),
        (Observation(Stage.HANDSHAKE, close_code=1013), Reason.BUSY, "too many handshakes"),
    ],
)
def test_what_the_socket_said_becomes_a_reason_in_words(
    seen: Observation, reason: Reason, words: str
) -> None:
    failure = classify(seen)
    assert failure.reason is reason
    assert words in failure.words
    assert failure.words.startswith(reason.value)  # the reason leads the sentence


def test_a_hello_left_unanswered_means_another_network_key() -> None:
    # the listener drops a hello whose hmac fails, so the dialer hears nothing back
    closed = classify(Observation(Stage.HANDSHAKE, handshake_received=0))
    late = classify(Observation(Stage.HANDSHAKE, handshake_received=0, timed_out=True))
    assert closed.reason is late.reason is Reason.WRONG_NETWORK_KEY
    assert closed.words == "no answer to the handshake before hanging up: wrong network key?"
    assert late.words == "no answer to the handshake in time: wrong network key?"


def test_an_answered_hello_then_silence_means_another_peer_key() -> None:
    # the listener answered the hello (same network key) but could not open our proof,
    # which we sealed for the pinned key: the node there is someone else
    failure = classify(Observation(Stage.HANDSHAKE, handshake_received=1))
    assert failure.reason is Reason.WRONG_PEER_KEY
    assert "pinned #PEERID" in failure.words


def test_a_reply_failing_its_check_names_the_step() -> None:
    hello = classify(Observation(Stage.HANDSHAKE, handshake_rejected=True))
    proof = classify(Observation(Stage.HANDSHAKE, handshake_received=1, handshake_rejected=True))
    assert hello.reason is Reason.WRONG_NETWORK_KEY
    assert proof.reason is Reason.WRONG_PEER_KEY
