"""Tests for mesh.wire.invite: the signed invite code's exact bytes, and every way it is refused."""

from __future__ import annotations

import base64
import contextlib

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.errors import InviteError, UsageError
from mesh.wire.address import PeerAddress
from mesh.wire.identity import Identity
from mesh.wire.invite import (
    DEFAULT_VALIDITY,
    DOMAIN,
    PREFIX,
    Invite,
    is_invite,
    make_invite,
)

ALICE = Identity.from_seed(bytes(range(32)), "alice")
NOW = 1_700_000_000
ADDRESSES = [("192.168.1.20", 7878), ("127.0.0.1", 7878)]

#: the invite of ALICE at ADDRESSES made at NOW: Ed25519 signatures are deterministic
GOLDEN = (
    "meshnotes:1:stccaa5ba677htqqxyoxbxiy45f4bglh4tldbg5fbvpr3xegmqjfkmnyuvqwy2ldmwjjflbrhezc4mjw"
    "haxdclrsgdgr5rusveytenzogaxdalrrzupmnttfpn7aa443u4hfdxc46fqnr7zbxvcyugwune6elqyigwogb46n3z"
    "e6nctsofvc3kluok7yywsgcyw2a3v67u5lueyzz4bsihr4fozjuhd66afq"
)


def raw_of(code: str) -> bytes:
    data = code[len(PREFIX) :].upper()
    return base64.b32decode(data + "=" * (-len(data) % 8))


def code_of(raw: bytes) -> str:
    return PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()


def test_golden_vector_pins_the_format() -> None:
    code = make_invite(ALICE, ADDRESSES, NOW)
    assert code == GOLDEN
    raw = raw_of(code)
    body, signature = raw[:-64], raw[-64:]
    assert msgpack.unpackb(body) == [
        ALICE.public_key,
        "alice",
        [["192.168.1.20", 7878], ["127.0.0.1", 7878]],
        NOW + DEFAULT_VALIDITY,
    ]
    assert ALICE.sign(DOMAIN + body) == signature


def test_decoding_returns_who_where_and_until_when() -> None:
    invite = Invite.decode(GOLDEN, NOW + 1)
    assert invite.peer_id == ALICE.peer_id
    assert invite.name == "alice"
    assert invite.expires == NOW + DEFAULT_VALIDITY
    assert invite.peer_addresses() == [
        PeerAddress("192.168.1.20", 7878, ALICE.public_key),
        PeerAddress("127.0.0.1", 7878, ALICE.public_key),
    ]


def test_case_and_whitespace_do_not_matter_so_the_qr_can_carry_uppercase() -> None:
    wrapped = "  " + GOLDEN[:70] + "\n" + GOLDEN[70:140] + " \n" + GOLDEN[140:] + "\n"
    assert Invite.decode(GOLDEN.upper(), NOW) == Invite.decode(wrapped, NOW)


def test_ipv6_hosts_and_no_addresses_round_trip() -> None:
    code = make_invite(ALICE, [("fe80::1%eth0", 1), ("::1", 65535)], NOW)
    assert Invite.decode(code, NOW).addresses == (("fe80::1%eth0", 1), ("::1", 65535))
    assert Invite.decode(make_invite(ALICE, [], NOW), NOW).addresses == ()


def test_every_changed_byte_is_refused() -> None:
    raw = raw_of(GOLDEN)
    for i in range(len(raw)):
        altered = bytearray(raw)
        altered[i] ^= 0x01
        with pytest.raises(InviteError):
            Invite.decode(code_of(bytes(altered)), NOW)


def test_a_changed_address_fails_the_signature_check() -> None:
    raw = raw_of(GOLDEN)
    altered = raw.replace(b"192.168.1.20", b"192.168.1.66")
    with pytest.raises(InviteError, match="altered or damaged") as caught:
        Invite.decode(code_of(altered), NOW)
    assert caught.value.reason == "signature"


def test_a_body_signed_by_another_key_is_refused() -> None:
    mallory = Identity.from_seed(bytes(32), "mallory")
    body = Invite(ALICE.public_key, "alice", (("10.9.9.9", 1),), NOW + 60).body()
    forged = code_of(body + mallory.sign(DOMAIN + body))
    with pytest.raises(InviteError, match="signature does not match"):
        Invite.decode(forged, NOW)


@pytest.mark.parametrize("cut", [1, 5, 64, 100, len(GOLDEN) - len(PREFIX) - 1])
def test_truncated_codes_are_refused(cut: int) -> None:
    with pytest.raises(InviteError):
        Invite.decode(GOLDEN[:-cut], NOW)


def test_an_expired_invite_is_refused_and_says_when_it_expired() -> None:
    expires = NOW + DEFAULT_VALIDITY
    assert Invite.decode(GOLDEN, expires).name == "alice"
    with pytest.raises(InviteError, match="expired on 2023-12-14 22:13 UTC") as caught:
        Invite.decode(GOLDEN, expires + 1)
    assert caught.value.reason == "expired"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "starts with 'meshnotes:1:'"),
        ("ws://127.0.0.1:1#abc", "starts with"),
        ("meshnotes:", "starts with"),
        ("meshnotes:x:abcd", "starts with"),
        ("meshnotes:1:!!!!", "not base32"),
        ("meshnotes:1:", "cut short"),
        ("meshnotes:1:" + "a" * 5000, "longer than"),
    ],
)
def test_malformed_codes_say_what_is_wrong(code: str, message: str) -> None:
    with pytest.raises(InviteError, match=message):
        Invite.decode(code, NOW)


def test_a_newer_format_asks_for_an_update() -> None:
    with pytest.raises(InviteError, match="update meshnotes") as caught:
        Invite.decode("meshnotes:2:" + GOLDEN[len(PREFIX) :], NOW)
    assert caught.value.reason == "version"


@pytest.mark.parametrize(
    "fields",
    [
        [b"k" * 32, "x", [], NOW],  # valid shape, but the signature will not match
        [b"k" * 31, "x", [], NOW],
        [b"k" * 32, 7, [], NOW],
        [b"k" * 32, "x", [["h", "80"]], NOW],
        [b"k" * 32, "x", [["bad host", 80]], NOW],
        [b"k" * 32, "x", [["h", 0]], NOW],
        [b"k" * 32, "x", [], True],
        [b"k" * 32, "x" * 65, [], NOW],
        [b"k" * 32, "x", [["h", 1]] * 9, NOW],
        {"k": 1},
    ],
)
def test_bodies_of_the_wrong_shape_are_refused(fields: object) -> None:
    body = msgpack.packb(fields, use_bin_type=True)
    with pytest.raises(InviteError):
        Invite.decode(code_of(body + bytes(64)), NOW)


def test_only_the_named_key_signs_and_names_are_bounded() -> None:
    with pytest.raises(UsageError, match="signed by the key it names"):
        Invite(bytes(32), "", (), NOW).encode(ALICE)
    long_name = Identity.from_seed(bytes(range(32)), "n" * 100)
    assert Invite.decode(make_invite(long_name, [], NOW), NOW).name == "n" * 64


def test_is_invite_tells_invites_from_peer_ids_and_addresses() -> None:
    assert is_invite(GOLDEN) and is_invite(" MESHNOTES:1:x")
    assert not is_invite(ALICE.peer_id) and not is_invite(f"ws://h:1#{ALICE.peer_id}")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_decodes_or_raises_invite_error(text: str) -> None:
    with contextlib.suppress(InviteError):
        Invite.decode(text, NOW)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_after_the_prefix_decode_or_raise_invite_error(raw: bytes) -> None:
    with contextlib.suppress(InviteError):
        Invite.decode(code_of(raw), NOW)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_edit_of_a_good_code_is_refused(data: st.DataObject) -> None:
    start = data.draw(st.integers(len(PREFIX), len(GOLDEN) - 1))
    end = data.draw(st.integers(start + 1, len(GOLDEN)))
    insert = data.draw(st.text("abcdefghijklmnopqrstuvwxyz234567", max_size=8))
    edited = GOLDEN[:start] + insert + GOLDEN[end:]
    if edited.lower() == GOLDEN:
        return
    with pytest.raises(InviteError):
        Invite.decode(edited, NOW)


def test_spare_bits_of_the_last_character_must_be_zero() -> None:
    # 142 bytes fill 228 base32 characters with 4 bits to spare: "q" has them clear
    assert GOLDEN.endswith("q")
    with pytest.raises(InviteError, match="damaged"):
        Invite.decode(GOLDEN[:-1] + "r", NOW)
