"""Tests for mesh.wire.link: two sans-I/O links wired together in memory, with a fake clock."""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from mesh.errors import FrameError, HandshakeError, LinkTimeout, UsageError
from mesh.wire.boxstream import HEADER_LEN, MAX_BODY
from mesh.wire.handshake import MSG1_LEN, MSG2_LEN, MSG3_LEN, MSG4_LEN
from mesh.wire.identity import Identity
from mesh.wire.link import Link, LinkConfig, LinkState
from mesh.wire.netkey import DEFAULT_NETWORK_KEY

CLIENT = Identity.from_seed(bytes(range(32)))
SERVER = Identity.from_seed(bytes(range(32, 64)))
STRANGER = Identity.from_seed(bytes(range(64, 96)))
OTHER_NETWORK_KEY = hashlib.blake2b(b"some private mesh", digest_size=32).digest()
CONFIG = LinkConfig()  # handshake 10 s, heartbeat 15 s, idle 45 s, max frame 256 KiB
MAX_FRAME = CONFIG.max_frame


def make_pair(
    now: float = 0.0,
    *,
    client_key: bytes = DEFAULT_NETWORK_KEY,
    server_key: bytes = DEFAULT_NETWORK_KEY,
    remote_key: bytes = SERVER.public_key,
    client_config: LinkConfig | None = None,
    server_config: LinkConfig | None = None,
) -> tuple[Link, Link]:
    client = Link(
        network_key=client_key,
        identity=CLIENT,
        now=now,
        remote_key=remote_key,
        config=client_config,
        ephemeral_key=PrivateKey(bytes([1]) * 32),
    )
    server = Link(
        network_key=server_key,
        identity=SERVER,
        now=now,
        config=server_config,
        ephemeral_key=PrivateKey(bytes([2]) * 32),
    )
    return client, server


def pump(a: Link, b: Link, now: float) -> tuple[list[bytes], list[bytes]]:
    """Move bytes both ways until both are quiet; return what a and b received."""
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    while True:
        to_b, to_a = a.data_to_send(), b.data_to_send()
        if not to_b and not to_a:
            return got_a, got_b
        if to_b:
            got_b += b.receive_data(to_b, now)
        if to_a:
            got_a += a.receive_data(to_a, now)


def open_pair(now: float = 0.0, **kwargs) -> tuple[Link, Link]:
    client, server = make_pair(now, **kwargs)
    assert pump(client, server, now) == ([], [])
    assert client.state is LinkState.OPEN
    assert server.state is LinkState.OPEN
    return client, server


def message_of(size: int, salt: int = 0) -> bytes:
    block = hashlib.sha512(f"{size}/{salt}".encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def feed(receiver: Link, data: bytes, cuts: list[int], now: float) -> list[bytes]:
    """Feed `data` to `receiver` split at the (reduced) cut points."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    messages: list[bytes] = []
    for start, end in itertools.pairwise(points):
        messages += receiver.receive_data(data[start:end], now)
    return messages


# --- handshake ----------------------------------------------------------------


def test_handshake_completes_and_each_side_learns_the_other() -> None:
    client, server = make_pair(now=0.0)
    assert client.is_client and not server.is_client
    assert client.state is server.state is LinkState.HANDSHAKE
    assert server.data_to_send() == b""  # the server waits for the client's hello

    msg1 = client.data_to_send()
    assert len(msg1) == MSG1_LEN
    assert server.receive_data(msg1, 0.1) == []
    msg2 = server.data_to_send()
    assert len(msg2) == MSG2_LEN
    assert client.receive_data(msg2, 0.2) == []
    msg3 = client.data_to_send()
    assert len(msg3) == MSG3_LEN
    assert server.receive_data(msg3, 0.3) == []
    assert server.state is LinkState.OPEN
    msg4 = server.data_to_send()
    assert len(msg4) == MSG4_LEN
    assert client.receive_data(msg4, 0.4) == []
    assert client.state is LinkState.OPEN

    assert client.remote_key == SERVER.public_key
    assert server.remote_key == CLIENT.public_key
    assert pump(client, server, 0.5) == ([], [])  # nothing else was pending


def test_handshake_split_byte_by_byte() -> None:
    client, server = make_pair()
    for sender, receiver in ((client, server), (server, client)) * 2:
        for byte in sender.data_to_send():
            assert receiver.receive_data(bytes([byte]), 0.0) == []
    assert client.state is server.state is LinkState.OPEN


def test_frames_right_behind_the_last_handshake_message_are_delivered() -> None:
    # The server may send as soon as it is open; its first frame can share a
    # transport chunk with msg4 and must not be lost in the handshake.
    client, server = make_pair()
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send(), 0.0)
    server.receive_data(client.data_to_send(), 0.0)
    server.send(b"early", 0.0)
    chunk = server.data_to_send()
    assert len(chunk) > MSG4_LEN
    assert client.receive_data(chunk, 0.0) == [b"early"]


def test_handshake_is_deterministic_with_pinned_ephemeral_keys() -> None:
    client_a, server_a = make_pair()
    client_b, server_b = make_pair()
    msg1 = client_a.data_to_send()
    assert msg1 == client_b.data_to_send()
    server_a.receive_data(msg1, 0.0)
    server_b.receive_data(msg1, 0.0)
    assert server_a.data_to_send() == server_b.data_to_send()


def test_wrong_network_key_fails_at_the_server_before_it_says_anything() -> None:
    client, server = make_pair(client_key=OTHER_NETWORK_KEY)
    with pytest.raises(HandshakeError, match="network key"):
        server.receive_data(client.data_to_send(), 0.0)
    assert server.state is LinkState.CLOSED
    assert server.data_to_send() == b""
    with pytest.raises(FrameError):
        server.receive_data(b"more", 0.0)


def test_dialling_the_wrong_server_key_fails_at_the_server() -> None:
    client, server = make_pair(remote_key=STRANGER.public_key)
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send(), 0.0)
    with pytest.raises(HandshakeError):
        server.receive_data(client.data_to_send(), 0.0)
    assert server.state is LinkState.CLOSED
    assert server.data_to_send() == b""


def test_handshake_deadline() -> None:
    client, server = make_pair(now=100.0)
    assert server.next_deadline() == client.next_deadline() == 100.0 + CONFIG.handshake_timeout
    server.receive_data(client.data_to_send(), 105.0)  # progress does not extend it
    server.tick(109.9)
    client.tick(109.9)
    assert server.state is LinkState.HANDSHAKE
    with pytest.raises(LinkTimeout, match="handshake"):
        server.tick(110.0)
    with pytest.raises(LinkTimeout, match="handshake"):
        client.tick(110.0)
    assert server.state is client.state is LinkState.CLOSED
    assert server.next_deadline() is None


# --- messages -------------------------------------------------------------------

SIZES = [1, MAX_BODY, 100_000, MAX_FRAME]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cuts=st.lists(st.integers(0, 2**32), max_size=60),
    back_cuts=st.lists(st.integers(0, 2**32), max_size=20),
    order=st.permutations(SIZES),
)
def test_messages_cross_under_any_chunking(
    cuts: list[int], back_cuts: list[int], order: list[int]
) -> None:
    client, server = open_pair()
    messages = [message_of(size, i) for i, size in enumerate(order)]
    for message in messages:
        client.send(message, 1.0)
    assert feed(server, client.data_to_send(), cuts, 1.0) == messages
    for message in messages:
        server.send(message, 2.0)
    assert feed(client, server.data_to_send(), back_cuts, 2.0) == messages


@pytest.mark.parametrize("size", [1, 5, MAX_BODY - 4, MAX_BODY, MAX_BODY + 1])
def test_message_fed_byte_by_byte(size: int) -> None:
    client, server = open_pair()
    message = message_of(size)
    client.send(message, 1.0)
    client.send(b"next", 1.0)
    data = client.data_to_send()
    received: list[bytes] = []
    for i in range(len(data)):
        received += server.receive_data(data[i : i + 1], 1.0)
    assert received == [message, b"next"]


def test_frames_are_cut_into_box_stream_bodies_of_at_most_4096_bytes() -> None:
    client, _ = open_pair()
    client.send(message_of(10_000), 1.0)
    # 4-byte length prefix + 10 000 bytes = 10 004 bytes = 4096 + 4096 + 1812
    assert len(client.data_to_send()) == 10_004 + 3 * HEADER_LEN
    client.send(b"x", 1.0)
    assert len(client.data_to_send()) == HEADER_LEN + 4 + 1


def test_send_rejects_empty_and_oversized_messages() -> None:
    client, _ = open_pair()
    with pytest.raises(UsageError):
        client.send(b"", 1.0)
    with pytest.raises(UsageError):
        client.send(bytes(MAX_FRAME + 1), 1.0)
    assert client.backlog == 0
    client.send(b"ok", 1.0)
    assert client.backlog == 6  # queued frame bytes, sealed when taken
    assert len(client.data_to_send()) == HEADER_LEN + 6
    assert client.backlog == 0


def test_frames_queued_together_share_box_stream_bodies() -> None:
    client, server = open_pair()
    messages = [message_of(500) for _ in range(20)]  # 20 frames of 504 bytes = 10,080 bytes
    for message in messages:
        client.send(message, 1.0)
    wire = client.data_to_send()
    assert len(wire) == 20 * 504 + 3 * HEADER_LEN  # three bodies (4096, 4096, 1888), not 20
    assert server.receive_data(wire, 1.0) == messages


def test_frames_sealed_later_in_threads_keep_their_order_on_the_wire() -> None:
    """Jobs sealed out of order, in threads, still open in the order the frames were sent,
    with the bytes taken at once (and a goodbye) around them."""
    client, server = open_pair()
    batches = [[message_of(700 + 300 * b + i) for i in range(12)] for b in range(3)]
    pieces: list[bytes] = []
    jobs = []
    for batch in batches:
        client.send(b"now", 1.0)
        ready, _ = client.data_to_send_sealing_later(10**9)  # below the bar: sealed at once
        pieces.append(ready)
        for message in batch:
            client.send(message, 1.0)
        ready, job = client.data_to_send_sealing_later(4096)
        assert ready == b"" and job is not None and len(job) == sum(4 + len(m) for m in batch)
        jobs.append(job)
        pieces.append(b"")  # the job's place on the wire
    client.close()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        sealed = [pool.submit(job.seal) for job in reversed(jobs)][::-1]
        for i, future in enumerate(sealed):
            pieces[2 * i + 1] = future.result()
    wire = b"".join(pieces) + client.data_to_send()
    expected = [m for batch in batches for m in [b"now", *batch]]
    assert server.receive_data(wire, 1.0) == expected
    assert server.state is LinkState.CLOSED  # the goodbye came last


def test_a_few_queued_bytes_are_sealed_at_once() -> None:
    client, server = open_pair()
    client.send(b"small", 1.0)
    ready, job = client.data_to_send_sealing_later(4096)
    assert job is None and server.receive_data(ready, 1.0) == [b"small"]


def test_send_on_a_link_that_is_not_open_is_a_usage_error() -> None:
    client, server = make_pair()
    with pytest.raises(UsageError, match="not open"):
        client.send(b"too early", 0.0)
    with pytest.raises(UsageError, match="not open"):
        server.send(b"too early", 0.0)
    pump(client, server, 0.0)
    client.close()
    with pytest.raises(UsageError, match="not open"):
        client.send(b"too late", 1.0)


def test_frame_longer_than_max_frame_is_a_frame_error() -> None:
    big = LinkConfig(max_frame=MAX_FRAME * 2)
    client, server = open_pair(client_config=big)
    client.send(bytes(MAX_FRAME + 1), 1.0)
    data = client.data_to_send()
    # the length prefix alone condemns the frame: the first body is enough
    with pytest.raises(FrameError, match="exceeds"):
        server.receive_data(data[: HEADER_LEN + MAX_BODY], 1.0)
    assert server.state is LinkState.CLOSED
    with pytest.raises(FrameError):
        server.receive_data(data[HEADER_LEN + MAX_BODY :], 1.0)


def test_frame_of_exactly_max_frame_passes_a_smaller_receiver_limit() -> None:
    small = LinkConfig(max_frame=1000)
    client, server = open_pair(server_config=small)
    client.send(bytes(1000), 1.0)
    assert server.receive_data(client.data_to_send(), 1.0) == [bytes(1000)]
    client.send(bytes(1001), 1.0)
    with pytest.raises(FrameError):
        server.receive_data(client.data_to_send(), 1.0)


# --- heartbeats and timeouts ------------------------------------------------------


def test_heartbeat_after_an_interval_of_silence() -> None:
    client, server = open_pair(now=0.0)
    assert client.next_deadline() == CONFIG.heartbeat_interval
    client.tick(CONFIG.heartbeat_interval - 0.1)
    assert client.data_to_send() == b""
    client.tick(CONFIG.heartbeat_interval)
    heartbeat = client.data_to_send()
    assert len(heartbeat) == HEADER_LEN + 4  # an empty frame: just its length prefix, 0
    assert server.receive_data(heartbeat, CONFIG.heartbeat_interval) == []
    assert server.state is LinkState.OPEN
    # the next heartbeat is due one interval after the last one
    assert client.next_deadline() == 2 * CONFIG.heartbeat_interval
    client.tick(2 * CONFIG.heartbeat_interval - 0.1)
    assert client.data_to_send() == b""


def test_sending_postpones_the_heartbeat() -> None:
    client, server = open_pair(now=0.0)
    client.send(b"hello", 10.0)
    client.tick(CONFIG.heartbeat_interval)
    assert server.receive_data(client.data_to_send(), 15.0) == [b"hello"]
    client.tick(10.0 + CONFIG.heartbeat_interval)
    heartbeat = client.data_to_send()
    assert len(heartbeat) == HEADER_LEN + 4
    assert server.receive_data(heartbeat, 25.0) == []


def test_idle_timeout() -> None:
    _, server = open_pair(now=0.0)
    server.tick(CONFIG.idle_timeout - 0.1)  # only queues a heartbeat
    assert server.state is LinkState.OPEN
    with pytest.raises(LinkTimeout, match="silent"):
        server.tick(CONFIG.idle_timeout)
    assert server.state is LinkState.CLOSED
    assert server.next_deadline() is None


def test_heartbeats_keep_an_idle_link_alive() -> None:
    client, server = open_pair(now=0.0)
    now = 0.0
    while now < 10 * CONFIG.idle_timeout:
        now = min(client.next_deadline(), server.next_deadline())
        client.tick(now)
        server.tick(now)
        assert pump(client, server, now) == ([], [])
    assert client.state is server.state is LinkState.OPEN


def test_anything_received_resets_the_idle_deadline() -> None:
    client, server = open_pair(now=0.0)
    client.send(b"ping", 30.0)
    server.receive_data(client.data_to_send(), 30.0)
    server.tick(30.0 + CONFIG.idle_timeout - 0.1)
    with pytest.raises(LinkTimeout):
        server.tick(30.0 + CONFIG.idle_timeout)


# --- closing --------------------------------------------------------------------


def test_close_says_goodbye_and_the_peer_closes() -> None:
    client, server = open_pair()
    client.send(b"last words", 1.0)
    client.close()
    assert client.state is LinkState.CLOSED
    data = client.data_to_send()  # pending bytes still go out, then the goodbye
    assert server.receive_data(data, 1.0) == [b"last words"]
    assert server.state is LinkState.CLOSED
    assert server.next_deadline() is None
    client.close()  # idempotent: no second goodbye
    assert client.data_to_send() == b""


def test_data_after_close_is_a_frame_error() -> None:
    client, server = open_pair()
    client.close()
    server.receive_data(client.data_to_send(), 1.0)
    with pytest.raises(FrameError):
        server.receive_data(b"\x00" * HEADER_LEN, 1.0)


def test_data_after_goodbye_in_the_same_chunk_is_a_frame_error() -> None:
    client, server = open_pair()
    client.close()
    goodbye = client.data_to_send()
    with pytest.raises(FrameError, match="goodbye"):
        server.receive_data(goodbye + b"more", 1.0)
    assert server.state is LinkState.CLOSED


def test_close_during_handshake_sends_nothing() -> None:
    client, _ = make_pair()
    client.close()
    assert client.state is LinkState.CLOSED
    assert client.data_to_send() == b""
    with pytest.raises(FrameError):
        client.receive_data(b"x", 0.0)


def test_tampered_frame_closes_the_link() -> None:
    client, server = open_pair()
    client.send(b"hello", 1.0)
    data = bytearray(client.data_to_send())
    data[-1] ^= 1
    with pytest.raises(FrameError):
        server.receive_data(bytes(data), 1.0)
    assert server.state is LinkState.CLOSED


# --- fuzzing --------------------------------------------------------------------


def _hello(network_key: bytes, eph: bytes) -> bytes:
    return hmac.new(network_key, eph, hashlib.sha512).digest()[:32] + eph


_REAL_MSG1 = make_pair()[0].data_to_send()
_LOW_ORDER = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    b"\xff" * 32,
]

handshake_input = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda tail: _REAL_MSG1 + tail, st.binary(max_size=300)),
    st.builds(
        lambda eph, tail: _hello(DEFAULT_NETWORK_KEY, eph) + tail,
        st.one_of(st.sampled_from(_LOW_ORDER), st.binary(min_size=32, max_size=32)),
        st.binary(max_size=200),
    ),
)


@settings(max_examples=150, deadline=None)
@given(data=handshake_input, cuts=st.lists(st.integers(0, 2**16), max_size=8))
def test_random_bytes_to_a_handshaking_server_raise_only_protocol_errors(
    data: bytes, cuts: list[int]
) -> None:
    server = Link(
        network_key=DEFAULT_NETWORK_KEY,
        identity=SERVER,
        now=0.0,
        ephemeral_key=PrivateKey(bytes([2]) * 32),
    )
    try:
        assert feed(server, data, cuts, 0.0) == []
    except (HandshakeError, FrameError):
        assert server.state is LinkState.CLOSED
        with pytest.raises(FrameError):
            server.receive_data(b"x", 0.0)
        return
    assert server.state is LinkState.HANDSHAKE


@settings(max_examples=50, deadline=None)
@given(data=st.binary(min_size=1, max_size=200))
def test_random_bytes_on_an_open_link_raise_only_frame_errors(data: bytes) -> None:
    _, server = open_pair()
    try:
        server.receive_data(data, 1.0)
    except FrameError:
        assert server.state is LinkState.CLOSED
    else:
        assert len(data) < HEADER_LEN  # anything longer cannot pass authentication
