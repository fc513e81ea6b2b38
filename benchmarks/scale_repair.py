"""The part of docs/scale.md measured apart from the scale runs: room reach and route repair.

Its figures come from the commands it names (``benchmarks/hop_reach.py``, single
``benchmarks.scale --only`` runs, and the simulator at the commit it names),
not from the results the rest of the page is written from; rerun those
commands to refresh it.
"""

from __future__ import annotations

REPAIR = """\
## Room delivery short of 100%: the cause and the fix

Measured apart from the tables above, with the commands named.

The first copy of a room envelope to reach a node is the fastest, not the one over the fewest
links; later copies were dropped as duplicates. A copy that came a long, fast way had few of its
8 links left, and members behind it never got the envelope, though a shorter path reached them.
`python -m benchmarks.hop_reach --nodes N --reserve 0` floods from 50 random authors on the
graphs and link latencies of these runs (a model of the flood, not the router):

| nodes | pairs missed, old rule | farther than 8 links | missed, marks | copies/node, old/marks |
|---|---|---|---|---|
| 1,000 | 0.010% | 0% | 0% | 4.91 / 6.37 |
| 2,000 | 0.041% | 0% | 0% | 4.82 / 6.84 |
| 5,000 | 0.187% | 0% | 0% | 4.50 / 7.34 |
| 10,000 | 0.312% | 0% | 0% | 4.27 / 7.40 |
| 20,000 | 0.705% | 0.002% | 0.002% | 3.92 / 7.16 |

So the 99.9% of the 5,000-node flood is members out of reach of the copy they got first. The
99.89% of the 5,000-node tree with churn is most likely the same (not traced): paths relearned
after churn come from the first re-shared announce to arrive, the fastest again, so trees grow
longer branches, and a room envelope follows them. The fix
(`mesh/routing/hopmarks.py`): a node that gets a room envelope with fewer than 3 links left
remembers its hop count, and passes on a later copy that crossed fewer links
(`room_passed_on_again`). Its cost: in flooded rooms most copies near the limit are late
ones; down an author's tree copies follow shortest paths until churn bends the tree. Measured
with the real router after the fix (`python -m benchmarks.scale --only 5000:flood:0`, and
likewise for the other rows, or `--quick`):

| scenario | room delivery (online members) before / after | room copies per member before / after |
|---|---|---|
| 5,000 nodes, 0% churn, flood | 99.9% / 100.0% | 4.82 / 7.70 |
| 5,000 nodes, 0% churn, gossip tree | 100.0% / 100.0% | 1.96 / 1.96 (399 passed on again) |
| 100 nodes, 0% churn, flood | 100.0% / 100.0% | 4.96 / 5.03 |
| 100 nodes, 20% churn, gossip tree | 100.0% / 100.0% | 2.38 / 2.39 |
| 100 nodes, 0% churn, gossip tree | 100.0% / 100.0% | 1.99 / 1.99 (nothing passed on again) |
| 1,000 nodes, 20% churn, flood | 100.0% / 100.0% | 4.36 / 5.63 (23,985 passed on again) |
| 1,000 nodes, 20% churn, gossip tree | 100.0% / 100.0% | 2.69 / 3.04 (11,941 passed on again) |

The 5,000-node tree with churn was not run again (55 minutes before the fix). At 20,000 nodes
0.002% of the pairs are farther apart than the 8-link hop limit: no single envelope reaches
them, whatever the routing.

## Route repair: what churn costs, and a first try at keeping it local

Announce and withdraw frames per churn event (one leave or one return) in the gossip-tree runs
with 20% churn: 591 at 100 nodes, 1,968 at 300, 8,166 at 1,000 and 42,143 at 5,000 (the
first two measured for this section, the others from the table above): every leave withdraws
the node and the paths through it across the mesh, and its return relearns them, so the cost
grows with n; the target at 5,000 nodes is 50.

A first try, measured and then taken out again: a path longer than a radius R kept when its
next hop first withdraws it, so that the news stops R links from the break; a relay that parks
traffic on such a path answering with a route error and an UNREACHABLE to the author, whose
FLOOD-flagged retries then wait. In the simulator at the commit "Experiment: withdrawals that
stop at a radius", with `sim.scenarios.quick(N, churn=0.2, gossip=True,
gossip_config=GossipConfig(tree=True), withdraw_radius=R)` (gossip tree, seed 1; frames:
announce, withdraw and table frames per leave or return; tx: direct transmissions over the
shortest path, mean; room delivery to members online throughout):

| nodes | R | frames / churn event | tx / shortest path | FLOOD retries | room delivery |
|---|---|---|---|---|---|
| 100 | off | 598 | 1.23 | 6% | 100% |
| 100 | 2 | 257 | 19.6 | 8% | 100% |
| 300 | off | 1,975 | 1.37 | 12% | 100% |
| 300 | 2 | 568 | 68.9 | 13% | 100% |

Fewer frames, but not local (568 at 300 nodes against 257 at 100), and direct messages paid
for it: traced, they ran in loops until their hop limit. A kept path cannot tell whether the
nodes it points at have since routed around the break through it; relearned paths did. Repair
that stays local needs a loop-free rule first: announces numbered by their author, and a path
taken only from a neighbour whose distance is below the best this node had for that number (the
feasibility condition of Babel), with a path request answered by a node that holds a newer
announce. Not built yet.
"""
