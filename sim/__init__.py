"""Simulating meshes: the discrete-event simulator that runs the real router of every
node (engine, network, scenarios, room-log catch-up), and hostile peers on real links
(hostile). Tests and benchmarks import it; the product does not."""
