"""Deterministic in-memory networks for stepping the sans-I/O mesh core."""
