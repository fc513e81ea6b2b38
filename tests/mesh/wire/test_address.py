"""Tests for mesh.wire.address (peer and listen addresses) and mesh.wire.netkey (network keys)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from mesh.errors import UsageError
from mesh.wire.address import PeerAddress, parse_listen
from mesh.wire.identity import Identity
from mesh.wire.netkey import DEFAULT_NETWORK_KEY, encode_network_key, load_network_key

KEY = Identity.from_seed(bytes(range(32))).public_key
PID = "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4a"

# --- PeerAddress ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        (f"ws://127.0.0.1:8000#{PID}", "127.0.0.1", 8000),
        (f"ws://example.org:1#{PID}", "example.org", 1),
        (f"ws://Example.ORG:65535#{PID}", "example.org", 65535),
        (f"ws://localhost:9000/#{PID}", "localhost", 9000),  # a bare "/" path is fine
        (f"  ws://localhost:9000#{PID}\n", "localhost", 9000),
        (f"ws://[::1]:9000#{PID}", "::1", 9000),
        (f"ws://[fe80::1:2]:443#{PID}", "fe80::1:2", 443),
        (f"ws://10.0.0.1:8000#{PID.upper()}", "10.0.0.1", 8000),
    ],
)
def test_parse_good_addresses(text: str, host: str, port: int) -> None:
    address = PeerAddress.parse(text)
    assert (address.host, address.port, address.peer_key) == (host, port, KEY)


@pytest.mark.parametrize(
    "text",
    [
        f"ws://127.0.0.1:8000#{PID}",
        f"ws://example.org:1#{PID}",
        f"ws://[::1]:9000#{PID}",
        f"ws://[2001:db8::7]:65535#{PID}",
    ],
)
def test_str_round_trips(text: str) -> None:
    address = PeerAddress.parse(text)
    assert str(address) == text
    assert PeerAddress.parse(str(address)) == address


def test_ipv6_host_is_bracketed_in_the_url() -> None:
    address = PeerAddress("::1", 9000, KEY)
    assert address.url == "ws://[::1]:9000"
    assert str(address) == f"ws://[::1]:9000#{PID}"
    assert PeerAddress("127.0.0.1", 80, KEY).url == "ws://127.0.0.1:80"


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("ws://127.0.0.1:8000", "lacks the #PEERID"),
        ("ws://127.0.0.1:8000#", "lacks the #PEERID"),
        (f"wss://127.0.0.1:8000#{PID}", "ws://HOST:PORT#PEERID"),
        (f"http://127.0.0.1:8000#{PID}", "ws://HOST:PORT#PEERID"),
        (f"127.0.0.1:8000#{PID}", "ws://HOST:PORT#PEERID"),
        (PID, "ws://HOST:PORT#PEERID"),
        ("", "ws://HOST:PORT#PEERID"),
        (f"ws://127.0.0.1:99999#{PID}", "bad port"),
        (f"ws://127.0.0.1:http#{PID}", "bad port"),
        (f"ws://127.0.0.1:-1#{PID}", "bad port"),
        (f"ws://127.0.0.1#{PID}", "needs a host and a port"),
        (f"ws://:8000#{PID}", "needs a host and a port"),
        (f"ws://127.0.0.1:8000/mesh#{PID}", "no path or query"),
        (f"ws://127.0.0.1:8000?x=1#{PID}", "no path or query"),
        (f"ws://127.0.0.1:8000/a?b#{PID}", "no path or query"),
        ("ws://127.0.0.1:8000#notapeerid", "52 characters"),
        (f"ws://127.0.0.1:8000#{PID[:-1]}", "52 characters"),
        (f"ws://127.0.0.1:8000#{PID[:-1]}1", "base32"),
        (f"ws://127.0.0.1:8000#{PID[:-1]}b", "not a peer id"),
    ],
)
def test_parse_bad_addresses_says_what_is_wrong(text: str, hint: str) -> None:
    with pytest.raises(UsageError) as info:
        PeerAddress.parse(text)
    assert hint in str(info.value)
    if text.strip() and "#" in text:
        # the message quotes what the user typed (or its peer id part)
        assert text.split("#")[-1] in str(info.value) or text in str(info.value)


# --- listen addresses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("0.0.0.0:8000", ("0.0.0.0", 8000)),
        ("localhost:65535", ("localhost", 65535)),
        ("[::1]:8000", ("::1", 8000)),
        ("[::]:0", ("::", 0)),
        (" 127.0.0.1:9 ", ("127.0.0.1", 9)),
    ],
)
def test_parse_listen_good(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "8000",
        ":8000",
        "localhost:",
        "localhost:65536",
        "localhost:-1",
        "localhost:http",
        "[]:80",
    ],
)
def test_parse_listen_bad(text: str) -> None:
    with pytest.raises(UsageError, match="HOST:PORT"):
        parse_listen(text)


# --- network keys -----------------------------------------------------------------

DEFAULT_KEY_BASE64 = "g3u6Eb60MBp9pQ0y28J30daMjsNGIXTcMeDrU+qJ/NA="


def test_default_network_key_is_blake2b_of_the_mesh_name() -> None:
    expected = hashlib.blake2b(b"meshnotes public mesh v1", digest_size=32).digest()
    assert expected == DEFAULT_NETWORK_KEY
    assert len(DEFAULT_NETWORK_KEY) == 32
    assert encode_network_key(DEFAULT_NETWORK_KEY) == DEFAULT_KEY_BASE64  # as in docs/protocol.md
    assert DEFAULT_NETWORK_KEY.hex() == (
        "837bba11beb4301a7da50d32dbc277d1d68c8ec3462174dc31e0eb53ea89fcd0"
    )


@pytest.mark.parametrize("ending", ["", "\n", "\r\n", "\n\n"])
def test_load_network_key_reads_one_base64_line(tmp_path, ending: str) -> None:
    key = bytes(range(100, 132))
    path = tmp_path / "mesh.key"
    path.write_text(encode_network_key(key) + ending)
    assert load_network_key(path) == key


def test_load_network_key_reads_the_default_key(tmp_path) -> None:
    path = tmp_path / "mesh.key"
    path.write_text(DEFAULT_KEY_BASE64 + "\n")
    assert load_network_key(path) == DEFAULT_NETWORK_KEY


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_load_network_key_rejects_wrong_length(tmp_path, size: int) -> None:
    path = tmp_path / "mesh.key"
    path.write_text(base64.b64encode(bytes(size)).decode() + "\n")
    with pytest.raises(UsageError, match=f"has {size} bytes; it must have 32"):
        load_network_key(path)


@pytest.mark.parametrize(
    "content",
    [
        "not base64 at all!",
        DEFAULT_KEY_BASE64[:-1],  # bad padding
        DEFAULT_KEY_BASE64.replace("+", "-").replace("/", "_"),  # urlsafe alphabet
        DEFAULT_KEY_BASE64[:20] + " " + DEFAULT_KEY_BASE64[20:],
        DEFAULT_KEY_BASE64 + "\n" + DEFAULT_KEY_BASE64,  # two lines
    ],
)
def test_load_network_key_rejects_non_base64(tmp_path, content: str) -> None:
    path = tmp_path / "mesh.key"
    path.write_text(content)
    with pytest.raises(UsageError, match="base64"):
        load_network_key(path)


def test_load_network_key_rejects_non_ascii_file(tmp_path) -> None:
    path = tmp_path / "mesh.key"
    path.write_bytes(b"\xff\xfe" + DEFAULT_KEY_BASE64.encode())
    with pytest.raises(UsageError, match="is not text: it must hold one line of base64"):
        load_network_key(path)


def test_load_network_key_missing_file(tmp_path) -> None:
    path = tmp_path / "missing.key"
    with pytest.raises(UsageError, match="cannot read the mesh key file") as info:
        load_network_key(path)
    assert str(path) in str(info.value)
