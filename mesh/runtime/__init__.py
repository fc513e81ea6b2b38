"""The thin asyncio layer: the node (serve, dial, links, timers, catch-up streams), the
control socket, the home directory, listeners, and the loop-lag monitor."""
