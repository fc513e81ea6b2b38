"""One secure link, sans-I/O: secret handshake, then box-stream carrying length-prefixed frames.

A link sees only a byte stream (how the transport splits it does not
matter). After the handshake every application message travels as one frame::

    u32  length      big-endian, 0 means heartbeat, at most LinkConfig.max_frame
    ...  message

and frames are cut into box-stream bodies of at most 4096 bytes. Frames queued
between two calls of :meth:`Link.data_to_send` are sealed together, so small
messages share bodies (one header and one body box per 4 KiB, not per message);
the frames on the wire are the same either way. The link
also owns its deadlines: the handshake must finish within
`handshake_timeout`; once open, a heartbeat goes out after
`heartbeat_interval` of silence and the link fails after `idle_timeout`
without hearing anything. The I/O layer calls :meth:`Link.tick` at
:meth:`Link.next_deadline`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import nacl.public

from mesh.errors import FrameError, LinkTimeout, UsageError
from mesh.wire.boxstream import BoxStreamDecoder, BoxStreamEncoder, SealJob
from mesh.wire.handshake import ClientHandshake, ServerHandshake
from mesh.wire.identity import Identity

_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class LinkConfig:
    """Limits and timings of one link."""

    handshake_timeout: float = 10.0
    heartbeat_interval: float = 15.0
    idle_timeout: float = 45.0
    max_frame: int = 256 * 1024


class LinkState(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


class Link:
    """The sans-I/O state of one link; the dialer passes the key it expects at the other end."""

    def __init__(
        self,
        *,
        network_key: bytes,
        identity: Identity,
        now: float,
        remote_key: bytes | None = None,
        config: LinkConfig | None = None,
        ephemeral_key: nacl.public.PrivateKey | None = None,
    ) -> None:
        self.config = config or LinkConfig()
        self.is_client = remote_key is not None
        self._handshake: ClientHandshake | ServerHandshake
        if remote_key is not None:
            self._handshake = ClientHandshake(
                network_key, identity.signing_key, remote_key, ephemeral_key=ephemeral_key
            )
        else:
            self._handshake = ServerHandshake(
                network_key, identity.signing_key, ephemeral_key=ephemeral_key
            )
        self.state = LinkState.HANDSHAKE
        self.remote_key: bytes | None = None
        self._encoder: BoxStreamEncoder | None = None
        self._decoder: BoxStreamDecoder | None = None
        self._outgoing = bytearray()  # sealed bytes for the transport
        self._plain = bytearray()  # frames queued since the last data_to_send(), not sealed yet
        self._frames = bytearray()
        self._started = now
        self._last_received = now
        self._last_sent = now

    @property
    def handshake_received(self) -> int:
        """How many of the peer's handshake messages passed their checks (2 once open)."""
        return self._handshake.received

    # -- input ---------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[bytes]:
        """Feed bytes from the transport; return the application messages they complete.

        Raises HandshakeError or FrameError when the peer breaks the protocol;
        the link is then unusable and the caller closes the transport.
        """
        if self.state is LinkState.CLOSED:
            raise FrameError("data after the link closed")
        self._last_received = now
        if self.state is LinkState.HANDSHAKE:
            try:
                self._handshake.receive_data(data)
            except Exception:
                self.state = LinkState.CLOSED
                raise
            self._outgoing += self._handshake.data_to_send()
            if not self._handshake.complete:
                return []
            result = self._handshake.result
            self.remote_key = result.remote_public_key
            self._encoder = BoxStreamEncoder(result.encrypt_key, result.encrypt_nonce)
            self._decoder = BoxStreamDecoder(result.decrypt_key, result.decrypt_nonce)
            self.state = LinkState.OPEN
            self._last_sent = now
            data = self._handshake.leftover
            if not data:
                return []
        assert self._decoder is not None
        try:
            bodies = self._decoder.receive_data(data)
        except FrameError:
            self.state = LinkState.CLOSED
            raise
        if self._decoder.closed:
            self.state = LinkState.CLOSED
        if not bodies:
            return []
        frames = self._frames
        for body in bodies:
            frames += body
        return self._split_frames()

    def _split_frames(self) -> list[bytes]:
        """Take the whole frames off the front of the buffer (one copy of each message)."""
        frames = self._frames
        messages: list[bytes] = []
        pos, size = 0, len(frames)
        with memoryview(frames) as view:
            while size - pos >= _LENGTH.size:
                (length,) = _LENGTH.unpack_from(frames, pos)
                if length > self.config.max_frame:
                    self.state = LinkState.CLOSED
                    raise FrameError(f"frame of {length} bytes exceeds {self.config.max_frame}")
                end = pos + _LENGTH.size + length
                if size < end:
                    break
                if length:  # zero-length frames are heartbeats
                    messages.append(bytes(view[pos + _LENGTH.size : end]))
                pos = end
        del frames[:pos]
        return messages

    # -- output --------------------------------------------------------------

    def send(self, message: bytes, now: float) -> None:
        """Queue one application message (non-empty, at most max_frame bytes)."""
        if self.state is not LinkState.OPEN or self._encoder is None:
            raise UsageError("the link is not open")
        if not 0 < len(message) <= self.config.max_frame:
            raise UsageError(f"a message has 1..{self.config.max_frame} bytes")
        self._plain += _LENGTH.pack(len(message))
        self._plain += message
        self._last_sent = now

    @property
    def backlog(self) -> int:
        """Bytes queued for the transport and not yet taken by :meth:`data_to_send`."""
        return len(self._outgoing) + len(self._plain)

    def close(self) -> None:
        """Say goodbye (once open) and stop; pending bytes still go out."""
        if self.state is LinkState.OPEN and self._encoder is not None:
            self._seal()
            self._outgoing += self._encoder.goodbye()
        self.state = LinkState.CLOSED

    def data_to_send(self) -> bytes:
        """Return and clear the bytes the transport must write."""
        data, _ = self.data_to_send_sealing_later(None)
        return data

    def data_to_send_sealing_later(self, at_least: int | None) -> tuple[bytes, SealJob | None]:
        """As :meth:`data_to_send`, but frames queued (`at_least` bytes or more) come as a job.

        The transport writes the bytes, then what the job seals (it may run in a
        worker thread), and only then the bytes of the next call: the job's
        nonces come right after those of the bytes returned with it.
        """
        if self.state is LinkState.HANDSHAKE:
            self._outgoing += self._handshake.data_to_send()
        job = None
        if at_least is not None and len(self._plain) >= at_least and self._encoder is not None:
            plain, self._plain = self._plain, bytearray()  # the job's own from now on
            job = self._encoder.reserve(plain)
        else:
            self._seal()
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data, job

    def _seal(self) -> None:
        if self._plain and self._encoder is not None:
            self._outgoing += self._encoder.encode(self._plain)
            self._plain.clear()

    # -- time ----------------------------------------------------------------

    def next_deadline(self) -> float | None:
        if self.state is LinkState.HANDSHAKE:
            return self._started + self.config.handshake_timeout
        if self.state is LinkState.OPEN:
            return min(
                self._last_sent + self.config.heartbeat_interval,
                self._last_received + self.config.idle_timeout,
            )
        return None

    def tick(self, now: float) -> None:
        """Enforce deadlines: raise LinkTimeout when one passed, send a heartbeat when due."""
        if self.state is LinkState.HANDSHAKE:
            if now >= self._started + self.config.handshake_timeout:
                self.state = LinkState.CLOSED
                raise LinkTimeout("the handshake did not finish in time")
        elif self.state is LinkState.OPEN:
            if now >= self._last_received + self.config.idle_timeout:
                self.state = LinkState.CLOSED
                raise LinkTimeout("the peer went silent")
            if now >= self._last_sent + self.config.heartbeat_interval and self._encoder:
                self._plain += _LENGTH.pack(0)
                self._last_sent = now
