"""The Double Ratchet and the X3DH agreement that starts it, as pure functions over state.

Follows Signal's specifications (https://signal.org/docs/specifications/x3dh/ and
.../doubleratchet/) with these choices:

- curve X25519 (libsodium's ``crypto_scalarmult``); identity keys are the peers'
  Ed25519 keys converted to X25519, as the pairwise boxes always did;
- KDF_RK: HKDF-SHA256 (RFC 5869), salt the root key, info ``meshnotes ratchet``;
- KDF_CK: HMAC-SHA256 of the chain key with 0x01 (message key) and 0x02 (next chain key);
- ENCRYPT: XChaCha20-Poly1305 with key and nonce from HKDF of the message key
  (info ``meshnotes message key``), the associated data ``AD || header``;
- X3DH without one-time prekeys: ``SK = HKDF(F || DH1 || DH2 || DH3)`` with
  ``F`` 32 bytes of 0xFF, info ``meshnotes X3DH``; ``AD = IK_A || IK_B`` (Ed25519 keys).
  When no signed prekey of the responder is known, its identity key stands in for it
  (see docs/threat-model.md for what that costs until the first answer).

Nothing here does I/O or reads a clock; randomness comes from the caller's `rng`
(``os.urandom`` by default), so tests replay exactly.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack
import nacl.bindings
import nacl.exceptions

from mesh.errors import ChatError

#: the most message keys one step may skip, and the most a session keeps in all
MAX_SKIP = 1000
MAX_SKIPPED_KEPT = 2000
OLD_KEYS_KEPT = 16

Rng = Callable[[int], bytes]


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract, then expand to `length` bytes."""
    prk = hmac.digest(salt or bytes(32), ikm, "sha256")
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return out[:length]


def dh(private: bytes, public: bytes) -> bytes:
    """X25519; raises ChatError for a public key of small order (an all-zero result)."""
    try:
        return nacl.bindings.crypto_scalarmult(private, public)
    except (nacl.exceptions.CryptoError, nacl.exceptions.RuntimeError, ValueError) as exc:
        raise ChatError("a ratchet key is not a valid X25519 key", reason="bad_ratchet") from exc


def peer_x25519(peer: bytes) -> bytes:
    """A peer's X25519 public key, from its Ed25519 identity key."""
    try:
        return nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(peer)
    except (nacl.exceptions.CryptoError, ValueError, RuntimeError) as exc:
        raise ChatError("not a valid peer key", reason="other") from exc


def keypair(rng: Rng = os.urandom) -> tuple[bytes, bytes]:
    """A fresh X25519 key pair (private, public)."""
    private = rng(32)
    return private, nacl.bindings.crypto_scalarmult_base(private)


def kdf_rk(root_key: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    out = hkdf(root_key, dh_out, b"meshnotes ratchet", 64)
    return out[:32], out[32:]


def kdf_ck(chain_key: bytes) -> tuple[bytes, bytes]:
    """(next chain key, message key)."""
    return (
        hmac.digest(chain_key, b"\x02", "sha256"),
        hmac.digest(chain_key, b"\x01", "sha256"),
    )


def _aead_parts(message_key: bytes) -> tuple[bytes, bytes]:
    out = hkdf(bytes(32), message_key, b"meshnotes message key", 56)
    return out[:32], out[32:]


def encrypt(message_key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    key, nonce = _aead_parts(message_key)
    return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)


def decrypt(message_key: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    key, nonce = _aead_parts(message_key)
    try:
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise ChatError("a ratchet message failed to open", reason="tampered") from exc


# -- X3DH ------------------------------------------------------------------------------

_F = b"\xff" * 32


def x3dh_initiator(ik_a: bytes, ek_a: bytes, ik_b_pub: bytes, spk_b_pub: bytes) -> bytes:
    """The initiator's shared secret: its identity and ephemeral X25519 secrets, the
    responder's identity and signed prekey (or identity again) public keys."""
    return hkdf(
        bytes(32),
        _F + dh(ik_a, spk_b_pub) + dh(ek_a, ik_b_pub) + dh(ek_a, spk_b_pub),
        b"meshnotes X3DH",
        32,
    )


def x3dh_responder(ik_b: bytes, spk_b: bytes, ik_a_pub: bytes, ek_a_pub: bytes) -> bytes:
    """The same secret, computed by the responder from its secrets."""
    return hkdf(
        bytes(32),
        _F + dh(spk_b, ik_a_pub) + dh(ik_b, ek_a_pub) + dh(spk_b, ek_a_pub),
        b"meshnotes X3DH",
        32,
    )


# -- the Double Ratchet -------------------------------------------------------------------


@dataclass
class Ratchet:
    """One side of a Double Ratchet session (the spec's state variables)."""

    root_key: bytes
    dhs: tuple[bytes, bytes]  # our current ratchet key pair (private, public)
    dhr: bytes | None = None  # the peer's current ratchet public key
    cks: bytes | None = None
    ckr: bytes | None = None
    ns: int = 0
    nr: int = 0
    pn: int = 0
    #: message keys skipped over, by (the peer's ratchet key, message number), oldest first
    skipped: dict[tuple[bytes, int], bytes] = field(default_factory=dict)
    #: the peer's earlier ratchet keys (the last OLD_KEYS_KEPT): a message on one is a duplicate
    old: list[bytes] = field(default_factory=list)

    @classmethod
    def initiator(cls, shared: bytes, peer_ratchet_key: bytes, rng: Rng = os.urandom) -> Ratchet:
        """RatchetInitAlice: the responder's signed prekey is its first ratchet key."""
        ours = keypair(rng)
        root, cks = kdf_rk(shared, dh(ours[0], peer_ratchet_key))
        return cls(root, ours, dhr=peer_ratchet_key, cks=cks)

    @classmethod
    def responder(cls, shared: bytes, our_ratchet_pair: tuple[bytes, bytes]) -> Ratchet:
        """RatchetInitBob: the signed prekey pair, until the first DH step replaces it."""
        return cls(shared, our_ratchet_pair)

    def encrypt(self, plaintext: bytes, ad: bytes) -> tuple[tuple[bytes, int, int], bytes]:
        """Seal the next message: (header (dh, pn, n), ciphertext)."""
        if self.cks is None:
            raise ChatError("this session cannot send before it hears from its peer", "bad_ratchet")
        self.cks, mk = kdf_ck(self.cks)
        header = (self.dhs[1], self.pn, self.ns)
        self.ns += 1
        return header, encrypt(mk, plaintext, ad + pack_header(header))

    def decrypt(
        self, header: tuple[bytes, int, int], ciphertext: bytes, ad: bytes, rng: Rng = os.urandom
    ) -> bytes:
        """Open a message; the state changes only when it opens (a forgery leaves it as it was).

        Raises ChatError with reason ``ratchet_used`` for a message whose key was used
        already (a duplicate), ``tampered`` for one that does not open.
        """
        dh_pub, pn, n = header
        full_ad = ad + pack_header(header)
        skipped = self.skipped.pop((dh_pub, n), None)
        if skipped is not None:
            try:
                return decrypt(skipped, ciphertext, full_ad)
            except ChatError:
                self.skipped[(dh_pub, n)] = skipped
                raise
        if dh_pub in self.old:
            raise ChatError("a ratchet message that was opened already", reason="ratchet_used")
        trial = self.copy()
        if dh_pub != trial.dhr:
            trial._skip_to(pn)
            trial._dh_step(dh_pub, rng)
        elif n < trial.nr:
            raise ChatError("a ratchet message that was opened already", reason="ratchet_used")
        if trial.ckr is None:  # our peer's prekey as its ratchet key: it never sends on that
            raise ChatError("a ratchet message on a chain never started", reason="tampered")
        trial._skip_to(n)
        trial.ckr, mk = kdf_ck(trial.ckr)
        trial.nr += 1
        plaintext = decrypt(mk, ciphertext, full_ad)
        self.__dict__.update(trial.__dict__)
        return plaintext

    def _skip_to(self, until: int) -> None:
        if self.ckr is None:
            return
        if until - self.nr > MAX_SKIP:
            raise ChatError("a ratchet message too far ahead of its chain", reason="ratchet_skip")
        assert self.dhr is not None
        while self.nr < until:
            self.ckr, mk = kdf_ck(self.ckr)
            self.skipped[(self.dhr, self.nr)] = mk
            self.nr += 1
        while len(self.skipped) > MAX_SKIPPED_KEPT:
            del self.skipped[next(iter(self.skipped))]

    def _dh_step(self, dh_pub: bytes, rng: Rng) -> None:
        self.pn, self.ns, self.nr = self.ns, 0, 0
        if self.dhr is not None:
            self.old = [*self.old, self.dhr][-OLD_KEYS_KEPT:]
        self.dhr = dh_pub
        self.root_key, self.ckr = kdf_rk(self.root_key, dh(self.dhs[0], dh_pub))
        self.dhs = keypair(rng)
        self.root_key, self.cks = kdf_rk(self.root_key, dh(self.dhs[0], dh_pub))

    def copy(self) -> Ratchet:
        return Ratchet(
            self.root_key, self.dhs, self.dhr, self.cks, self.ckr, self.ns, self.nr, self.pn,
            dict(self.skipped), list(self.old),
        )  # fmt: skip

    # -- storage --------------------------------------------------------------------------

    def dump(self) -> bytes:
        return pack(
            [
                self.root_key, list(self.dhs), self.dhr, self.cks, self.ckr, self.ns, self.nr,
                self.pn, [[k[0], k[1], v] for k, v in self.skipped.items()], self.old,
            ]
        )  # fmt: skip

    @classmethod
    def load(cls, data: bytes) -> Ratchet:
        rk, dhs, dhr, cks, ckr, ns, nr, pn, skipped, old = msgpack.unpackb(data)
        return cls(
            rk, (dhs[0], dhs[1]), dhr, cks, ckr, ns, nr, pn,
            {(k, i): v for k, i, v in skipped}, old,
        )  # fmt: skip


def pack(value: object) -> bytes:
    packed: bytes = msgpack.packb(value)
    return packed


def pack_header(header: tuple[bytes, int, int]) -> bytes:
    return pack(list(header))


def check_header(header: object) -> tuple[bytes, int, int]:
    """A header as received, checked for shape; ChatError ``malformed`` otherwise."""
    if (
        isinstance(header, list)
        and len(header) == 3
        and isinstance(header[0], bytes)
        and len(header[0]) == 32
        and all(isinstance(x, int) and 0 <= x < 2**32 for x in header[1:])
    ):
        return header[0], header[1], header[2]
    raise ChatError("malformed ratchet header", reason="malformed")
