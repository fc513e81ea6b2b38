"""Network keys: the 32-byte capability that gates a mesh (the secret handshake's K).

Peers that do not share the key cannot complete a handshake, and learn
nothing about each other. The default public-mesh key is public on purpose;
private meshes keep their own in a file of one base64 line
(``--mesh-key-file``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from mesh.errors import UsageError

#: The public mesh's key: BLAKE2b-256 of the ASCII text "meshnotes public mesh v1".
#: In base64: see docs/protocol.md (and ``encode_network_key(DEFAULT_NETWORK_KEY)``).
DEFAULT_NETWORK_KEY = hashlib.blake2b(b"meshnotes public mesh v1", digest_size=32).digest()


def encode_network_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def load_network_key(path: Path) -> bytes:
    """Read a network key file: one line of base64 holding exactly 32 bytes."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except UnicodeDecodeError as exc:  # a binary file: say what it should hold
        raise UsageError(
            f"the mesh key file {path} is not text: it must hold one line of base64"
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot read the mesh key file {path}: {exc.strerror or exc}") from exc
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UsageError(f"the mesh key file {path} does not hold base64 text") from exc
    if len(key) != 32:
        raise UsageError(f"the mesh key in {path} has {len(key)} bytes; it must have 32")
    return key
