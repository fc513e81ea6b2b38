"""Where envelopes go: the router (paths, repair, admission, forwarding), room gossip,
parking, seen ids, pacing, rate limits and replay bookkeeping. Sans-I/O: `now` in,
actions out; tests and the simulator step it."""
