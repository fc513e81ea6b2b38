"""Attachments: files end-to-end encrypted, cut into chunks, verified by a hash tree, swarmed.

docs/files.md describes the format and the protocol; the modules, bottom up:
``format`` (chunk encryption, the hash tree, the descriptor a chat message
carries), ``wire`` (the FILE payloads peers swap), ``swarm`` (which chunk to
ask of whom, sans-I/O), ``holdings`` (what this node keeps, on disk and in the
store) and ``service`` (the node-facing part: envelopes, timers, progress).
"""
