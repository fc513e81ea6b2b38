"""What travels between two peers: identities, the network key, the secret handshake,
box-stream, the link state machine, signed envelopes and peer addresses. Sans-I/O."""
