"""Peer identities: an Ed25519 signing key, its X25519 twin, peer ids and safety numbers.

A peer id is the 32-byte Ed25519 public key in lowercase RFC 4648 base32
without padding (52 characters). Key files are JSON, written owner-only
(0600); with a passphrase the seed is sealed with SecretBox under a key
stretched by argon2id, so the file is useless without the passphrase.

With a passphrase the file also holds the home's **store key**, the random
32-byte key its database is encrypted with (mesh/storage/store.py), sealed with
the same stretched key: one passphrase, one argon2id run, unlocks both, and a
passphrase change is committed by one atomic rename of this file.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from mesh.errors import IdentityError, UsageError

PEER_ID_LENGTH = 52
_KEY_FILE_VERSION = 1


def encode_peer_id(public_key: bytes) -> str:
    """Return the peer id (52 lowercase base32 characters) of a 32-byte public key."""
    if len(public_key) != 32:
        raise UsageError(f"a public key has 32 bytes, not {len(public_key)}")
    return _peer_id(bytes(public_key))


@functools.lru_cache(maxsize=4096)
def _peer_id(public_key: bytes) -> str:
    # the same few keys (rooms, authors, neighbours) are named for every envelope kept
    return base64.b32encode(public_key).decode("ascii").rstrip("=").lower()


def decode_peer_id(peer_id: str) -> bytes:
    """Return the 32-byte public key named by a full peer id; raise UsageError if it is not one."""
    text = peer_id.strip()
    if len(text) != PEER_ID_LENGTH:
        raise UsageError(
            f"a peer id has {PEER_ID_LENGTH} characters, this one has {len(text)}: {peer_id!r}"
        )
    try:
        raw = base64.b32decode(text.upper() + "====", casefold=False)
    except ValueError as exc:
        raise UsageError(f"not a peer id (base32 expected): {peer_id!r}") from exc
    if len(raw) != 32 or encode_peer_id(raw) != text.lower():
        raise UsageError(f"not a peer id: {peer_id!r}")
    return raw


def short_id(peer_id: str) -> str:
    """Return the first 8 characters of a peer id, for display."""
    return peer_id[:8]


def safety_number(key_a: bytes, key_b: bytes) -> str:
    """Return the safety number two peers compare out of band to verify each other's keys.

    It is symmetric (both sides compute the same code) and made of six groups of
    five digits, derived with BLAKE2b from both public keys.
    """
    low, high = sorted((key_a, key_b))
    digest = hashlib.blake2b(low + high, digest_size=30, person=b"meshnotes-sn-v1").digest()
    groups = [int.from_bytes(digest[i : i + 5], "big") % 100_000 for i in range(0, 30, 5)]
    return " ".join(f"{g:05d}" for g in groups)


@dataclass(frozen=True)
class Identity:
    """A peer's long-term keys and display name."""

    signing_key: nacl.signing.SigningKey
    name: str = ""

    @classmethod
    def generate(cls, name: str = "") -> Identity:
        """Create a fresh identity with a random key."""
        return cls(nacl.signing.SigningKey.generate(), name)

    @classmethod
    def from_seed(cls, seed: bytes, name: str = "") -> Identity:
        """Create the identity whose Ed25519 seed is `seed` (32 bytes), for tests and vectors."""
        if len(seed) != 32:
            raise UsageError("an Ed25519 seed has 32 bytes")
        return cls(nacl.signing.SigningKey(seed), name)

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def peer_id(self) -> str:
        return encode_peer_id(self.public_key)

    @property
    def x25519_private_key(self) -> bytes:
        """The X25519 secret derived from the Ed25519 key (for crypto_box)."""
        sk = bytes(self.signing_key) + self.public_key
        return nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(sk)

    @property
    def x25519_public_key(self) -> bytes:
        return nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte detached Ed25519 signature of `message`."""
        return self.signing_key.sign(message).signature

    def safety_number_with(self, other_public_key: bytes) -> str:
        return safety_number(self.public_key, other_public_key)

    # -- key files ---------------------------------------------------------

    def save(
        self, path: Path, passphrase: str | None = None, store_key: bytes | None = None
    ) -> None:
        """Write the key file owner-only (0600), atomically; seal the seed (and the store
        key, which needs a passphrase) with a passphrase."""
        seed = bytes(self.signing_key)
        record: dict[str, object] = {
            "version": _KEY_FILE_VERSION,
            "peer_id": self.peer_id,
            "name": self.name,
        }
        if store_key is not None and not passphrase:
            raise UsageError("a store key is kept only under a passphrase")
        if passphrase:
            salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
            ops = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
            mem = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
            box = nacl.secret.SecretBox(
                nacl.pwhash.argon2id.kdf(32, passphrase.encode(), salt, ops, mem)
            )
            record["seed"] = {
                "kdf": "argon2id",
                "salt": base64.b64encode(salt).decode(),
                "opslimit": ops,
                "memlimit": mem,
                "sealed": base64.b64encode(bytes(box.encrypt(seed))).decode(),
            }
            if store_key is not None:
                record["store"] = {
                    "sealed": base64.b64encode(bytes(box.encrypt(store_key))).decode()
                }
        else:
            record["seed"] = {"kdf": "none", "plain": base64.b64encode(seed).decode()}
        write_private_file(path, json.dumps(record, indent=2).encode() + b"\n")

    @staticmethod
    def has_store_key(path: Path) -> bool:
        """Whether the key file seals a store key (the database is encrypted), without
        unsealing anything."""
        return "store" in _read_record(path)

    @staticmethod
    def is_locked(path: Path) -> bool:
        """Whether the key file's seed is sealed with a passphrase."""
        seed = _read_record(path).get("seed")
        return isinstance(seed, dict) and seed.get("kdf") != "none"

    @staticmethod
    def read_public(path: Path) -> tuple[str, str]:
        """Return the (peer id, name) a key file declares, without unsealing its secret."""
        try:
            record = json.loads(path.read_bytes())
            peer_id, name = record["peer_id"], record.get("name", "")
            decode_peer_id(peer_id)
        except (OSError, ValueError, KeyError, TypeError, UsageError) as exc:
            raise IdentityError(f"the key file {path} is unreadable or corrupt") from exc
        return peer_id, str(name)

    @classmethod
    def load(cls, path: Path, passphrase: str | None = None) -> Identity:
        """Read a key file written by :meth:`save`; raise IdentityError saying why it fails."""
        return cls.unlock(path, passphrase)[0]

    @classmethod
    def unlock(cls, path: Path, passphrase: str | None = None) -> tuple[Identity, bytes | None]:
        """The identity and the store key (None: the database is not encrypted) of a key file."""
        try:
            record = json.loads(path.read_bytes())
            seed_info = record["seed"]
            kdf = seed_info["kdf"]
        except FileNotFoundError as exc:
            raise IdentityError(f"no identity at {path}; run 'meshnotes init' first") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IdentityError(f"the key file {path} is unreadable or corrupt") from exc
        store_key = None
        try:
            if kdf == "none":
                seed = base64.b64decode(seed_info["plain"], validate=True)
            elif kdf == "argon2id":
                if not passphrase:
                    raise IdentityError(
                        f"the key file {path} is locked: give its passphrase "
                        "(MESHNOTES_PASSPHRASE or --passphrase-file)"
                    )
                box = nacl.secret.SecretBox(
                    nacl.pwhash.argon2id.kdf(
                        32,
                        passphrase.encode(),
                        base64.b64decode(seed_info["salt"], validate=True),
                        int(seed_info["opslimit"]),
                        int(seed_info["memlimit"]),
                    )
                )
                seed = box.decrypt(base64.b64decode(seed_info["sealed"], validate=True))
                if "store" in record:
                    store_key = box.decrypt(
                        base64.b64decode(record["store"]["sealed"], validate=True)
                    )
            else:
                raise IdentityError(f"the key file {path} uses an unknown kdf {kdf!r}")
        except nacl.exceptions.CryptoError as exc:
            raise IdentityError(f"wrong passphrase for the key file {path}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise IdentityError(f"the key file {path} is corrupt") from exc
        if len(seed) != 32 or (store_key is not None and len(store_key) != 32):
            raise IdentityError(f"the key file {path} is corrupt (bad key length)")
        identity = cls.from_seed(seed, str(record.get("name", "")))
        if record.get("peer_id") not in (None, identity.peer_id):
            raise IdentityError(f"the key file {path} is corrupt (peer id does not match key)")
        return identity, store_key


def _read_record(path: Path) -> dict[str, object]:
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise IdentityError(f"the key file {path} is unreadable or corrupt") from exc
    if not isinstance(record, dict):
        raise IdentityError(f"the key file {path} is unreadable or corrupt")
    return record


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable and writable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # a leftover temp file would keep its old mode
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)


def fsync_directory(path: Path) -> None:
    """Make a rename in directory `path` durable (a crash may otherwise undo it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
