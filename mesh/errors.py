"""The mesh package's exceptions.

Every error the mesh layer raises derives from :class:`MeshError`. The tree
separates what the local caller got wrong from what a remote peer did::

    MeshError
    ├── UsageError            the local caller misused the API or gave bad input
    │   ├── PeerNameError     a peer name that matches no one, or several
    │   └── InviteError       an invite code that is corrupt, altered, expired or too new
    ├── IdentityError         a key file that is missing, corrupt, or locked
    ├── NodeNotRunningError   no node answers on the home's control socket
    ├── StorageError          the database is unreadable, corrupt, full, or too new
    └── ProtocolError         a remote peer broke the protocol
        ├── HandshakeError    secret handshake failed (wrong key, bad proof)
        ├── FrameError        box-stream or link framing failed (tamper, oversize)
        ├── LinkTimeout       the peer missed a deadline (handshake, idle)
        ├── EnvelopeError     a malformed, oversized or badly signed envelope
        └── ChatError         a chat or membership message that fails its checks

Library errors (nacl, websockets, sqlite3) are translated into these at the
boundary, so callers catch one family.
"""

from __future__ import annotations


class MeshError(Exception):
    """Root of every error raised by the mesh package."""


class UsageError(MeshError):
    """The local caller misused the API or passed bad input."""


class PeerNameError(UsageError):
    """A peer name (id, id prefix or nickname) matched no one or several peers."""


class InviteError(UsageError):
    """An invite code is corrupt, was altered, has expired, or is of a newer format.

    `reason` names which: ``format``, ``signature``, ``expired`` or ``version``.
    """

    def __init__(self, message: str, reason: str = "format") -> None:
        super().__init__(message)
        self.reason = reason


class IdentityError(MeshError):
    """A key file is missing, corrupt, or needs a passphrase that was not given."""


class NodeNotRunningError(MeshError):
    """No running node answers on the home directory's control socket."""


class StorageError(MeshError):
    """The database is unreadable, corrupt, full, or from a newer version of the program."""


class ProtocolError(MeshError):
    """A remote peer sent something the protocol does not allow."""


class HandshakeError(ProtocolError):
    """The secret handshake failed: wrong network key, wrong peer key, or a bad proof."""


class FrameError(ProtocolError):
    """A box-stream or link frame failed authentication or broke a size limit."""


class LinkTimeout(ProtocolError):
    """The peer missed a deadline: the handshake took too long, or the link went silent."""


class EnvelopeError(ProtocolError):
    """An envelope is malformed, oversized, expired, or carries a bad signature."""


class ChatError(ProtocolError):
    """A chat, receipt or membership message failed decoding, decryption or a membership check.

    `reason` is the short name its refusal is counted under (``control_rejected_<reason>``).
    """

    def __init__(self, message: str, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason
