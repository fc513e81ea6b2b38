"""Peer addresses: ``ws://HOST:PORT#PEERID``, where the fragment pins the key the dialer expects."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mesh.errors import UsageError
from mesh.wire.identity import decode_peer_id, encode_peer_id


@dataclass(frozen=True)
class PeerAddress:
    """Where to dial a peer, and which key must answer there."""

    host: str
    port: int
    peer_key: bytes

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.url}#{encode_peer_id(self.peer_key)}"

    @classmethod
    def parse(cls, text: str) -> PeerAddress:
        """Parse ``ws://HOST:PORT#PEERID``; raise UsageError saying what is wrong."""
        parts = urlsplit(text.strip())
        if parts.scheme != "ws":
            raise UsageError(f"a peer address looks like ws://HOST:PORT#PEERID, not {text!r}")
        if not parts.fragment:
            raise UsageError(f"the peer address {text!r} lacks the #PEERID that pins its key")
        try:
            port = parts.port
        except ValueError as exc:
            raise UsageError(f"bad port in peer address {text!r}") from exc
        if not parts.hostname or not port:
            raise UsageError(f"the peer address {text!r} needs a host and a port (not 0)")
        if parts.username is not None or parts.password is not None:
            raise UsageError(f"a peer address carries no user or password: {text!r}")
        if parts.path not in ("", "/") or parts.query:
            raise UsageError(f"a peer address has no path or query: {text!r}")
        return cls(parts.hostname, port, decode_peer_id(parts.fragment))


def parse_listen(text: str) -> tuple[str, int]:
    """Parse a ``HOST:PORT`` listen address (port 0 picks a free one)."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    valid_host = host and "/" not in host and "@" not in host
    if not sep or not valid_host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"a listen address looks like HOST:PORT, not {text!r}")
    return host, int(port_text)
