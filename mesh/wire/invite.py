"""Invite codes: a peer's id, display name and addresses in one signed, copy-pasteable line.

An invite reads ``meshnotes:1:`` followed by the lowercase RFC 4648 base32 (no
padding) of ``body || signature``:

- ``body`` is the msgpack array ``[peer_key, name, addresses, expires]``: the
  32-byte Ed25519 public key (bin), the display name (str, at most 64
  characters), the addresses (an array of at most 8 ``[host, port]`` pairs,
  the most widely reachable first) and when the invite stops being accepted
  (int, Unix seconds);
- ``signature`` is the 64-byte Ed25519 signature of ``DOMAIN || body`` by that
  same key, so nobody can change a byte (an address, the name) without the code
  failing to decode.

Decoding ignores case and whitespace (codes get re-typed and wrapped), so the
QR code can carry the uppercase form, which QR's compact alphanumeric mode
holds. Everything here is sans-I/O: the caller passes `now`.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from dataclasses import dataclass

import msgpack
import nacl.exceptions
import nacl.signing

from mesh.errors import InviteError, UsageError
from mesh.wire.address import PeerAddress
from mesh.wire.identity import Identity, encode_peer_id

SCHEME = "meshnotes"
VERSION = 1
PREFIX = f"{SCHEME}:{VERSION}:"
#: what the signature covers before the body: no other signed thing can pass for an invite
DOMAIN = b"meshnotes-invite-v1\x00"
SIGNATURE_LENGTH = 64
MAX_NAME = 64
MAX_ADDRESSES = 8
MAX_HOST = 253
#: longer codes are refused before decoding anything (8 long hosts fit well within)
MAX_CODE = 4096
#: how long an invite is accepted by default: its addresses go stale
DEFAULT_VALIDITY = 30 * 24 * 3600

_HOST = re.compile(r"[A-Za-z0-9._:%-]+")
_SPACE = re.compile(r"\s+")


def is_invite(text: str) -> bool:
    """Whether `text` is meant as an invite (it may still fail to decode): it names the scheme."""
    return text.strip().lower().startswith(SCHEME + ":")


@dataclass(frozen=True)
class Invite:
    """What an invite tells: who (key, name), where to dial them, and until when."""

    peer_key: bytes
    name: str
    addresses: tuple[tuple[str, int], ...]
    expires: int

    def __post_init__(self) -> None:
        if len(self.peer_key) != 32:
            raise UsageError("an invite names a 32-byte public key")
        if len(self.name) > MAX_NAME:
            raise UsageError(f"an invite's name has at most {MAX_NAME} characters")
        if len(self.addresses) > MAX_ADDRESSES:
            raise UsageError(f"an invite carries at most {MAX_ADDRESSES} addresses")
        for host, port in self.addresses:
            if not _valid_host(host) or not 0 < port < 65536:
                raise UsageError(f"not a dialable address for an invite: {host!r} port {port}")

    @property
    def peer_id(self) -> str:
        return encode_peer_id(self.peer_key)

    def peer_addresses(self) -> list[PeerAddress]:
        """The addresses to dial, each pinned to the invite's key."""
        return [PeerAddress(host, port, self.peer_key) for host, port in self.addresses]

    def body(self) -> bytes:
        """The signed msgpack body."""
        addresses = [[host, port] for host, port in self.addresses]
        packed: bytes = msgpack.packb(
            [self.peer_key, self.name, addresses, self.expires], use_bin_type=True
        )
        return packed

    def encode(self, identity: Identity) -> str:
        """The invite code, signed by `identity` (whose key the invite must name)."""
        if identity.public_key != self.peer_key:
            raise UsageError("an invite is signed by the key it names")
        body = self.body()
        raw = body + identity.sign(DOMAIN + body)
        return PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=").lower()

    @classmethod
    def decode(cls, code: str, now: float) -> Invite:
        """Decode and check an invite code; raise InviteError saying what is wrong with it.

        Checks, in order: the prefix and version, the encoding, the body's
        shape, the signature, and that it has not expired at `now`.
        """
        text = _SPACE.sub("", code)
        if len(text) > MAX_CODE:
            raise InviteError(f"this is not an invite code: longer than {MAX_CODE} characters")
        scheme, _, rest = text.partition(":")
        version, sep, data = rest.partition(":")
        if scheme.lower() != SCHEME or not sep:
            raise InviteError(f"an invite code starts with {PREFIX!r}")
        if version != str(VERSION):
            if version.isdigit() and int(version) > VERSION:
                raise InviteError(
                    f"this invite is of format {version}, newer than this meshnotes reads"
                    f" ({VERSION}): update meshnotes",
                    "version",
                )
            raise InviteError(f"an invite code starts with {PREFIX!r}")
        raw = _b32decode(data)
        if len(raw) <= SIGNATURE_LENGTH:
            raise InviteError("this invite code is cut short: copy all of it", "format")
        body, signature = raw[:-SIGNATURE_LENGTH], raw[-SIGNATURE_LENGTH:]
        invite = _unpack(body)
        try:
            nacl.signing.VerifyKey(invite.peer_key).verify(DOMAIN + body, signature)
        except (nacl.exceptions.CryptoError, ValueError) as exc:
            raise InviteError(
                "this invite code was altered or damaged: its signature does not match",
                "signature",
            ) from exc
        if now > invite.expires:
            when = datetime.datetime.fromtimestamp(invite.expires, datetime.UTC)
            raise InviteError(
                f"this invite expired on {when:%Y-%m-%d %H:%M} UTC: ask for a new one", "expired"
            )
        return invite


def make_invite(
    identity: Identity,
    addresses: list[tuple[str, int]],
    now: float,
    validity: int = DEFAULT_VALIDITY,
) -> str:
    """An invite code for `identity`, reachable at `addresses`, valid for `validity` seconds."""
    unique = list(dict.fromkeys(addresses))[:MAX_ADDRESSES]
    name = identity.name[:MAX_NAME]
    invite = Invite(identity.public_key, name, tuple(unique), int(now) + validity)
    return invite.encode(identity)


def _valid_host(host: object) -> bool:
    return isinstance(host, str) and 0 < len(host) <= MAX_HOST and bool(_HOST.fullmatch(host))


def _b32decode(data: str) -> bytes:
    damaged = "this invite code is damaged or cut short (not base32): copy all of it"
    text = data.upper()
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError) as exc:
        raise InviteError(damaged) from exc
    # one spelling per code: the spare bits of the last character must be zero
    if base64.b32encode(raw).decode("ascii").rstrip("=") != text:
        raise InviteError(damaged)
    return raw


def _unpack(body: bytes) -> Invite:
    damaged = "this invite code is damaged: its contents do not decode"
    try:
        fields = msgpack.unpackb(
            body,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=64,
            max_str_len=MAX_HOST * 2,
            max_array_len=MAX_ADDRESSES * 2,
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, msgpack.UnpackException, RecursionError) as exc:
        raise InviteError(damaged) from exc
    if not (isinstance(fields, list) and len(fields) == 4):
        raise InviteError(damaged)
    peer_key, name, addresses, expires = fields
    if not (
        isinstance(peer_key, bytes)
        and isinstance(name, str)
        and isinstance(addresses, list)
        and type(expires) is int
        and all(isinstance(a, list) and len(a) == 2 and type(a[1]) is int for a in addresses)
    ):
        raise InviteError(damaged)
    try:
        return Invite(peer_key, name, tuple((a[0], a[1]) for a in addresses), expires)
    except UsageError as exc:
        raise InviteError(f"{damaged}: {exc}") from exc
