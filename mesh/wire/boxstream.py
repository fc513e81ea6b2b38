"""SSB box-stream framing, sans-I/O.

Byte-compatible with npm ``pull-box-stream`` and the Scuttlebutt protocol
guide. Each body of at most 4096 bytes goes out as::

    header (34 B) = secretbox(len_be16 | body_mac16, nonce n)
    body  (len B) = secretbox(body, nonce n + 1) without its 16-byte MAC

after which the nonce is n + 2 (nonces are 24-byte big-endian counters). The
stream ends with a "goodbye" header: secretbox of 18 zero bytes.
"""

from __future__ import annotations

from typing import NoReturn

import nacl.bindings
import nacl.exceptions

from mesh.errors import FrameError, UsageError

MAX_BODY = 4096
HEADER_LEN = 34
KEY_LEN = 32
NONCE_LEN = 24
_MAC_LEN = 16
_GOODBYE_PLAIN = bytes(2 + _MAC_LEN)
_NONCE_MOD = 1 << (8 * NONCE_LEN)


def _nonce(counter: int) -> bytes:
    """The 24-byte big-endian nonce for a counter (wrapping at 2**192)."""
    return (counter % _NONCE_MOD).to_bytes(NONCE_LEN, "big")


def _check_key_nonce(key: bytes, nonce: bytes) -> None:
    if len(key) != KEY_LEN:
        raise UsageError(f"box-stream key must be {KEY_LEN} bytes")
    if len(nonce) != NONCE_LEN:
        raise UsageError(f"box-stream nonce must be {NONCE_LEN} bytes")


class BoxStreamEncoder:
    """Encrypts outgoing bytes into box-stream frames.

    Keep one encoder per direction for the whole connection: the nonce advances
    with every frame. After ``goodbye`` the encoder refuses to encode.
    """

    def __init__(self, key: bytes, nonce: bytes) -> None:
        _check_key_nonce(key, nonce)
        self._key = bytes(key)
        self._counter = int.from_bytes(nonce, "big")  # the nonce, as an integer
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once ``goodbye`` has been produced."""
        return self._closed

    def encode(self, data: bytes | bytearray | memoryview) -> bytes:
        """Return the frames for ``data``; bodies are split at MAX_BODY bytes.

        Empty data yields b"" (an empty body would look like a goodbye).
        """
        return self.reserve(data).seal()

    def reserve(self, data: bytes | bytearray | memoryview) -> SealJob:
        """Take the nonces that sealing ``data`` needs, and return the job that seals it.

        The job may run later and in another thread (PyNaCl releases the GIL):
        its bytes go on the wire after those of every earlier reservation and
        before those of every later one. ``data`` must not change until it ran.
        """
        if self._closed:
            raise UsageError("box-stream already said goodbye")
        job = SealJob(self._key, self._counter, data)
        self._counter += 2 * -(-len(data) // MAX_BODY)  # two nonces per body
        return job

    def goodbye(self) -> bytes:
        """Return the end-of-stream header; later encode() calls raise UsageError."""
        if self._closed:
            raise UsageError("box-stream already said goodbye")
        self._closed = True
        return nacl.bindings.crypto_secretbox(_GOODBYE_PLAIN, _nonce(self._counter), self._key)


class SealJob:
    """Box-stream frames for some bytes, sealed from nonces reserved for them beforehand."""

    __slots__ = ("_counter", "_data", "_key")

    def __init__(self, key: bytes, counter: int, data: bytes | bytearray | memoryview) -> None:
        self._key = key
        self._counter = counter
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def seal(self) -> bytes:
        """Return the frames (safe to run in any one thread: the nonces are this job's own)."""
        view = memoryview(self._data)
        key = self._key
        counter = self._counter
        secretbox = nacl.bindings.crypto_secretbox
        frames: list[bytes] = []
        for start in range(0, len(view), MAX_BODY):
            body = view[start : start + MAX_BODY]
            # PyNaCl takes any buffer (it copies it once, behind the zero padding)
            boxed = secretbox(body, _nonce(counter + 1), key)  # type: ignore[arg-type]
            header_plain = len(body).to_bytes(2, "big") + boxed[:_MAC_LEN]
            frames.append(secretbox(header_plain, _nonce(counter), key))
            frames.append(boxed[_MAC_LEN:])
            counter += 2
        return b"".join(frames)


class BoxStreamDecoder:
    """Decrypts incoming box-stream bytes split at any boundary.

    Holds at most one header or one body (<= 4096 bytes) of pending input. Any
    failure raises FrameError and the decoder stays failed; bodies decoded
    earlier in the failing call are dropped, since the stream is dead anyway.
    """

    def __init__(self, key: bytes, nonce: bytes) -> None:
        _check_key_nonce(key, nonce)
        self._key = bytes(key)
        self._counter = int.from_bytes(nonce, "big")  # the nonce, as an integer
        self._buf = bytearray()
        # None while waiting for a header; else (body length, body MAC).
        self._pending_body: tuple[int, bytes] | None = None
        self._closed = False
        self._failed = False

    @property
    def closed(self) -> bool:
        """True once the peer's goodbye header has been received."""
        return self._closed

    @property
    def failed(self) -> bool:
        """True after any FrameError; the decoder accepts nothing more."""
        return self._failed

    @property
    def buffered(self) -> int:
        """Number of received bytes waiting for the rest of their header or body."""
        return len(self._buf)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Feed received bytes; return the bodies they complete, in order."""
        if self._failed:
            raise FrameError("box-stream already failed")
        bodies: list[bytes] = []
        pos = 0
        end = len(data)
        data = memoryview(data)  # pieces are read without copying them first
        while pos < end:
            if self._closed:
                self._fail("data after box-stream goodbye")
            want = HEADER_LEN if self._pending_body is None else self._pending_body[0]
            if self._buf:
                take = want - len(self._buf)
                self._buf += data[pos : pos + take]
                pos += take
                if len(self._buf) < want:
                    break
                chunk: bytes | memoryview = bytes(self._buf)
                self._buf.clear()
            elif end - pos >= want:  # the common case: a whole piece in this input
                chunk = data[pos : pos + want]
                pos += want
            else:
                self._buf += data[pos:]
                break
            if self._pending_body is None:
                self._on_header(chunk)
            else:
                bodies.append(self._on_body(chunk))
        return bodies

    def _on_header(self, header: bytes | memoryview) -> None:
        try:
            plain = nacl.bindings.crypto_secretbox_open(
                bytes(header), _nonce(self._counter), self._key
            )
        except nacl.exceptions.CryptoError:
            self._fail("box-stream header failed authentication")
        if plain == _GOODBYE_PLAIN:
            self._closed = True
            return
        length = int.from_bytes(plain[:2], "big")
        if length == 0 or length > MAX_BODY:
            self._fail(f"box-stream header has invalid body length {length}")
        self._pending_body = (length, plain[2:])
        self._counter += 1

    def _on_body(self, cipher: bytes | memoryview) -> bytes:
        assert self._pending_body is not None
        mac = self._pending_body[1]
        try:
            body = nacl.bindings.crypto_secretbox_open(
                mac + cipher, _nonce(self._counter), self._key
            )
        except nacl.exceptions.CryptoError:
            self._fail("box-stream body failed authentication")
        self._pending_body = None
        self._counter += 1
        return body

    def _fail(self, reason: str) -> NoReturn:
        self._failed = True
        self._buf.clear()
        raise FrameError(reason)
