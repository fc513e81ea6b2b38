"""Secret Handshake v1 (SSB "shs1"), sans-I/O.

Implements the four-message handshake of the Scuttlebutt protocol guide and the
npm ``secret-handshake`` module, byte for byte. Neither class touches sockets,
clocks or threads: feed received bytes to ``receive_data`` and write whatever
``data_to_send`` returns. The only randomness is the ephemeral key, which the
caller may inject.

Message layout (``auth`` is HMAC-SHA-512-256, ``box`` is NaCl secretbox with a
zero nonce, ``|`` is concatenation)::

    msg1  client -> server   64 B  auth(N, a_pub) | a_pub
    msg2  server -> client   64 B  auth(N, b_pub) | b_pub
    msg3  client -> server  112 B  box(sig_A(N | B | sha256(ab)) | A, key3)
    msg4  server -> client   80 B  box(sig_B(N | msg3_plain | sha256(ab)), key4)

See docs/protocol.md for the key derivations.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing

from mesh.errors import HandshakeError, UsageError

MSG1_LEN = 64
MSG2_LEN = 64
MSG3_LEN = 112
MSG4_LEN = 80
NETWORK_KEY_LEN = 32
PUBLIC_KEY_LEN = 32

# Both secretboxes of the handshake use an all-zero nonce: each key is used once.
_ZERO_NONCE = bytes(nacl.bindings.crypto_secretbox_NONCEBYTES)
_BOXSTREAM_NONCE_LEN = 24


def _auth(key: bytes, msg: bytes) -> bytes:
    """NaCl ``crypto_auth``: HMAC-SHA-512 truncated to 32 bytes (PyNaCl lacks it)."""
    return hmac.new(key, msg, hashlib.sha512).digest()[:32]


def _sha256(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _scalarmult(secret: bytes, public: bytes) -> bytes:
    # libsodium refuses low-order points (all-zero result); that surfaces as a
    # nacl CryptoError, which receive_data turns into HandshakeError.
    return nacl.bindings.crypto_scalarmult(secret, public)


# Ed25519 identity key -> X25519 key for the DH steps; raises on invalid points.
_to_curve = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519


@dataclass(frozen=True)
class HandshakeResult:
    """What a finished handshake yields: the peer's identity and box-stream keys.

    ``encrypt_*`` seed the box-stream we send, ``decrypt_*`` the one we receive;
    one side's encrypt pair equals the other side's decrypt pair.
    """

    remote_public_key: bytes
    encrypt_key: bytes
    encrypt_nonce: bytes
    decrypt_key: bytes
    decrypt_nonce: bytes


class _Handshake:
    """Shared buffering and failure handling; subclasses supply the crypto steps."""

    # Sizes of the messages this side receives, in order.
    _INCOMING: tuple[int, int] = (0, 0)

    def __init__(
        self,
        network_key: bytes,
        signing_key: nacl.signing.SigningKey,
        ephemeral_key: nacl.public.PrivateKey | None,
    ) -> None:
        if len(network_key) != NETWORK_KEY_LEN:
            raise UsageError(f"network key must be {NETWORK_KEY_LEN} bytes")
        if not isinstance(signing_key, nacl.signing.SigningKey):
            raise UsageError("signing_key must be a nacl.signing.SigningKey")
        if ephemeral_key is None:
            ephemeral_key = nacl.public.PrivateKey.generate()
        self._network_key = bytes(network_key)
        self._signing_key = signing_key
        self._public_key = signing_key.verify_key.encode()
        self._eph_secret = ephemeral_key.encode()
        self._eph_public = ephemeral_key.public_key.encode()
        self._stage = 0
        self._buf = bytearray()
        self._out = bytearray()
        self._leftover = bytearray()
        self._failed = False
        self._result: HandshakeResult | None = None

    def receive_data(self, data: bytes) -> None:
        """Consume bytes from the peer, split at any boundary.

        Bytes past the last handshake message are kept in ``leftover`` (they are
        the start of the box-stream). Raises HandshakeError on any failed check;
        every later call raises it again.
        """
        if self._failed:
            raise HandshakeError("handshake already failed")
        pos = 0
        while pos < len(data) and self._result is None:
            size = self._INCOMING[self._stage]
            take = size - len(self._buf)
            self._buf += data[pos : pos + take]
            pos += take
            if len(self._buf) < size:
                break
            message = bytes(self._buf)
            self._buf.clear()
            try:
                self._handle(self._stage, message)
            except HandshakeError:
                self._fail()
                raise
            except (nacl.exceptions.CryptoError, ValueError) as exc:
                self._fail()
                raise HandshakeError(f"handshake message failed verification: {exc}") from exc
            self._stage += 1
        if pos < len(data):
            self._leftover += data[pos:]

    def data_to_send(self) -> bytes:
        """Return and clear the bytes waiting to go to the peer."""
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def complete(self) -> bool:
        """True once both sides are authenticated and the result is available."""
        return self._result is not None

    @property
    def received(self) -> int:
        """How many of the peer's handshake messages passed their checks (0, 1 or 2).

        A dialer that fails tells from this how far the peer went along: no
        answer at all to its hello, or an answer and then nothing.
        """
        return self._stage

    @property
    def failed(self) -> bool:
        """True after any verification failure; the handshake cannot recover."""
        return self._failed

    @property
    def result(self) -> HandshakeResult:
        """The outcome; raises UsageError before the handshake is complete."""
        if self._result is None:
            raise UsageError("handshake is not complete")
        return self._result

    @property
    def leftover(self) -> bytes:
        """Bytes received after the final handshake message (box-stream data)."""
        return bytes(self._leftover)

    def _fail(self) -> None:
        self._failed = True
        # Nothing queued may reach a peer we no longer trust.
        self._out.clear()
        self._buf.clear()

    def _handle(self, stage: int, message: bytes) -> None:
        raise NotImplementedError

    def _hello(self) -> tuple[bytes, bytes]:
        """Our hello message and its hmac (the hmac also seeds a box-stream nonce)."""
        mac = _auth(self._network_key, self._eph_public)
        return mac + self._eph_public, mac

    def _check_hello(self, message: bytes) -> tuple[bytes, bytes]:
        """Verify the peer's hello; return its ephemeral public key and hmac."""
        mac, eph_public = message[:32], message[32:]
        if not hmac.compare_digest(mac, _auth(self._network_key, eph_public)):
            raise HandshakeError("hello hmac mismatch: peer uses another network key")
        return eph_public, mac

    @staticmethod
    def _outcome(
        key4: bytes,
        remote_key: bytes,
        local_key: bytes,
        remote_mac: bytes,
        local_mac: bytes,
    ) -> HandshakeResult:
        # Each direction's key binds the receiver's identity; its nonce is the
        # receiver's hello hmac, so the two directions never share a nonce.
        key4_hash = _sha256(key4)
        return HandshakeResult(
            remote_public_key=remote_key,
            encrypt_key=_sha256(key4_hash, remote_key),
            encrypt_nonce=remote_mac[:_BOXSTREAM_NONCE_LEN],
            decrypt_key=_sha256(key4_hash, local_key),
            decrypt_nonce=local_mac[:_BOXSTREAM_NONCE_LEN],
        )


class ClientHandshake(_Handshake):
    """The side that opens the connection and already knows the server's key.

    Its hello (msg1) is pending in ``data_to_send`` right after construction.
    """

    _INCOMING = (MSG2_LEN, MSG4_LEN)

    def __init__(
        self,
        network_key: bytes,
        signing_key: nacl.signing.SigningKey,
        server_public_key: bytes,
        *,
        ephemeral_key: nacl.public.PrivateKey | None = None,
    ) -> None:
        super().__init__(network_key, signing_key, ephemeral_key)
        if len(server_public_key) != PUBLIC_KEY_LEN:
            raise UsageError(f"server public key must be {PUBLIC_KEY_LEN} bytes")
        self._server_key = bytes(server_public_key)
        try:
            self._server_curve = _to_curve(self._server_key)
        except (nacl.exceptions.CryptoError, ValueError) as exc:
            raise UsageError("server public key is not a valid Ed25519 key") from exc
        hello, self._local_mac = self._hello()
        self._out += hello
        self._server_eph = b""
        self._remote_mac = b""
        self._ab = b""
        self._a_b = b""
        self._msg3_plain = b""

    def _handle(self, stage: int, message: bytes) -> None:
        (self._on_msg2 if stage == 0 else self._on_msg4)(message)

    def _on_msg2(self, message: bytes) -> None:
        self._server_eph, self._remote_mac = self._check_hello(message)
        self._ab = _scalarmult(self._eph_secret, self._server_eph)
        self._a_b = _scalarmult(self._eph_secret, self._server_curve)
        signed = self._network_key + self._server_key + _sha256(self._ab)
        signature = self._signing_key.sign(signed).signature
        self._msg3_plain = signature + self._public_key
        key3 = _sha256(self._network_key, self._ab, self._a_b)
        self._out += nacl.bindings.crypto_secretbox(self._msg3_plain, _ZERO_NONCE, key3)

    def _on_msg4(self, message: bytes) -> None:
        own_curve = self._signing_key.to_curve25519_private_key().encode()
        ab_long = _scalarmult(own_curve, self._server_eph)
        key4 = _sha256(self._network_key, self._ab, self._a_b, ab_long)
        try:
            signature = nacl.bindings.crypto_secretbox_open(message, _ZERO_NONCE, key4)
        except nacl.exceptions.CryptoError as exc:
            raise HandshakeError("server accept box does not open") from exc
        signed = self._network_key + self._msg3_plain + _sha256(self._ab)
        try:
            nacl.signing.VerifyKey(self._server_key).verify(signed, signature)
        except nacl.exceptions.BadSignatureError as exc:
            raise HandshakeError("server accept signature is invalid") from exc
        self._result = self._outcome(
            key4, self._server_key, self._public_key, self._remote_mac, self._local_mac
        )


class ServerHandshake(_Handshake):
    """The side that accepts a connection; it learns the client's key from msg3.

    Nothing is pending until msg1 arrives. Accepting any authenticated client
    is the caller's policy decision: check ``result.remote_public_key``.
    """

    _INCOMING = (MSG1_LEN, MSG3_LEN)

    def __init__(
        self,
        network_key: bytes,
        signing_key: nacl.signing.SigningKey,
        *,
        ephemeral_key: nacl.public.PrivateKey | None = None,
    ) -> None:
        super().__init__(network_key, signing_key, ephemeral_key)
        self._client_eph = b""
        self._remote_mac = b""
        self._local_mac = b""
        self._ab = b""

    def _handle(self, stage: int, message: bytes) -> None:
        (self._on_msg1 if stage == 0 else self._on_msg3)(message)

    def _on_msg1(self, message: bytes) -> None:
        self._client_eph, self._remote_mac = self._check_hello(message)
        self._ab = _scalarmult(self._eph_secret, self._client_eph)
        hello, self._local_mac = self._hello()
        self._out += hello

    def _on_msg3(self, message: bytes) -> None:
        own_curve = self._signing_key.to_curve25519_private_key().encode()
        a_b = _scalarmult(own_curve, self._client_eph)
        key3 = _sha256(self._network_key, self._ab, a_b)
        try:
            plain = nacl.bindings.crypto_secretbox_open(message, _ZERO_NONCE, key3)
        except nacl.exceptions.CryptoError as exc:
            # Also what a client that dialled the wrong server key produces.
            raise HandshakeError("client auth box does not open") from exc
        signature, client_key = plain[:64], plain[64:]
        signed = self._network_key + self._public_key + _sha256(self._ab)
        try:
            nacl.signing.VerifyKey(client_key).verify(signed, signature)
        except nacl.exceptions.BadSignatureError as exc:
            raise HandshakeError("client auth signature is invalid") from exc
        ab_long = _scalarmult(self._eph_secret, _to_curve(client_key))
        key4 = _sha256(self._network_key, self._ab, a_b, ab_long)
        accept = self._signing_key.sign(self._network_key + plain + _sha256(self._ab)).signature
        self._out += nacl.bindings.crypto_secretbox(accept, _ZERO_NONCE, key4)
        self._result = self._outcome(
            key4, client_key, self._public_key, self._remote_mac, self._local_mac
        )
