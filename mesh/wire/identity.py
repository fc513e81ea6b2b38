"""Peer identities: an Ed25519 signing key, its X25519 twin, peer ids and safety numbers.

A peer id is the 32-byte Ed25519 public key in lowercase RFC 4648 base32
without padding (52 characters). Key files are JSON, written owner-only
(0600); with a passphrase the seed is sealed with SecretBox under a key
stretched by argon2id, so the file is useless without the passphrase.

With a passphrase the file also holds the home's **store key**, the random
32-byte key its database is encrypted with (mesh/storage/store.py), sealed with
the same stretched key: one passphrase, one argon2id run, unlocks both, and a
passphrase change is committed by one atomic rename of this file.

Naming keys (:mod:`mesh.wire.peerid`) and reading a key file's public half
(:mod:`mesh.wire.keyfile`) need no cryptography and live apart; they are
re-exported here.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from mesh.errors import IdentityError, UsageError
from mesh.wire import keyfile
from mesh.wire.keyfile import fsync_directory, write_private_file
from mesh.wire.peerid import PEER_ID_LENGTH, decode_peer_id, encode_peer_id, safety_number, short_id

_KEY_FILE_VERSION = 1

__all__ = [
    "PEER_ID_LENGTH",
    "Identity",
    "decode_peer_id",
    "encode_peer_id",
    "fsync_directory",
    "safety_number",
    "short_id",
    "write_private_file",
]


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
        return keyfile.has_store_key(path)

    @staticmethod
    def is_locked(path: Path) -> bool:
        """Whether the key file's seed is sealed with a passphrase."""
        return keyfile.is_locked(path)

    @staticmethod
    def read_public(path: Path) -> tuple[str, str]:
        """Return the (peer id, name) a key file declares, without unsealing its secret."""
        return keyfile.read_public(path)

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
