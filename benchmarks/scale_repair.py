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

## Route repair: what churn costs, and keeping it local (an experiment, off by default)

Before: announce and withdraw frames per churn event (one leave or one return) in the
gossip-tree runs with 20% churn: 591 at 100 nodes, 1,968 at 300, 8,166 at 1,000 and 42,143 at
5,000 (the first two measured for this section, the others from the table above): every leave
withdraws the node and the paths through it across the mesh, and its return relearns them, so
the cost grows with n; the target at 5,000 nodes is 50.

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

Fewer frames, but not local, and direct messages ran in loops until their hop limit: a kept
path cannot tell whether the nodes it points at have since routed around the break through it.

### What was built: `RouterConfig.local_departures` (`mesh/routing/repair.py`)

Every rule below takes a path back only from a neighbour that said it was no farther from the
destination than this node was: the feasibility condition of Babel, with hop counts for
metrics and the distance the node had for the best it advertised. Every node whose path runs
through this node is farther than it was, so such a path cannot lead back through it; that is
what the first try lacked.

- **Departures.** A destination two links away that a neighbour withdraws was that
  neighbour's own neighbour: it left. The node drops its path and parks what comes for it
  (FLOOD-flagged copies too) but tells nobody: farther nodes keep paths into the departed
  node's neighbourhood, where its traffic waits (`mesh/routing/parking.py`). On its return the
  neighbours next to it pass its announce on once, to the nodes two links away, which take it
  back (feasible: from a neighbour at distance 1) and pass it no farther. If the link to the
  neighbour that withdrew it goes down meanwhile, the return would no longer reach the node:
  it withdraws the destination on, as before (`departures_cut_off`).
- **Transit paths** through a node that left, without a fallback: asked only of the
  neighbours that passed this node the destination's announce from no farther than it was
  (`Route.near`), one WITHDRAW frame per link listing every destination asked of it; they
  re-share their paths in one TABLE per link; a feasible one is taken and not passed on (the
  nodes behind kept their paths through this one and were not told). Only if none comes
  within 3 s is the destination withdrawn to every neighbour as before (`repairs_starved`).
- **HELD** (envelope type 14): a relay that parks a directed envelope for a departed peer
  tells its author, at most once per 15 s; the author, and every node that passes the notice
  on, sends that peer's FLOOD-flagged retries along the path for 30 s instead of flooding
  them (those retries would otherwise flood the whole mesh: far nodes still have a path).

### Measured, old against new

`python -c "from sim.scenarios import Scenario, run; from mesh.routing.gossip import
GossipConfig; print(run(Scenario(nodes=N, churn=0.2, gossip=True,
gossip_config=GossipConfig(tree=True), local_departures=L), parts=2))"` (gossip tree, 20% churn,
seed 1, two processes, but the 1,000-node run before, made in one; frames/ev.: announce and
withdraw frames per churn event, a leave or a return; TABLE frames apart; tx: direct
transmissions over the shortest path; room: delivery to members online throughout; copies:
room copies per member; note: converged and byte-identical; KiB: RSS per simulated node):

| n | repair | frames/ev. | TABLE/ev. | direct | tx med, mean | room | copies | note | wall s | KiB
|---|---|---|---|---|---|---|---|---|---|---
| 100 | before | 591 | 7 | 100% | 1.00, 1.23 | 100% | 2.39 | yes | 6.0 | 762 |
| 100 | local | 99 | 29 | 100% | 1.00, 3.41 | 100% | 2.30 | yes | 4.5 | 750 |
| 300 | before | 1,968 | 8 | 100% | 1.00, 1.37 | 100% | 2.50 | yes | 16.8 | 750 |
| 300 | local | 235 | 72 | 100% | 1.00, 5.01 | 100% | 2.24 | yes | 9.7 | 697 |
| 1,000 | before | 8,145 | 9 | 100% | 1.00, 1.22 | 100% | 3.04 | yes | 331 (1 process) | 1,100 |
| 1,000 | local | 1,023 | 257 | 100% | 1.00, 29.3 | 100% | 2.46 | yes | 82.7 | 944 |
| 5,000 | before (above) | 42,143 | — | 100% | 1.00, 1.3 | 99.89% | 2.66 | yes | 3,299 | 3,875 |
| 5,000 | local | 5,073 | 1,047 | 100% | 1.00, 55.7 | 100% | 2.66 | yes | 2,027 | 2,558 |

- Frames per churn event fall 6 to 8 times (591 -> 99, 1,968 -> 235, 8,145 -> 1,023,
  42,143 -> 5,073), and at every size direct delivery stays 100%, room delivery to members
  online throughout 100%, room copies per member no higher than before (2.2 to 2.5; 2.66 at
  5,000 nodes, as before), and the note converges byte-identical. But the cost still
  grows with n, about as n: it is not local yet. Counted apart, by node, at 300 nodes: of the
  10,051 starved repairs (`repairs_starved`) only 439 are at nodes still linked (the rest are
  the leaving node's own: its links go down one after the other, and it asks the ones still
  up); but 5,356 transit paths at linked nodes broke with no neighbour to ask, and were
  withdrawn across the mesh as before: a path relearned after a break has no `Route.near`
  neighbours left (each was offered it and may have taken its path through this node), so
  when it breaks again there is no feasible neighbour known. The WITHDRAW frames are 8,293
  requests to neighbours, 3,835 withdrawals and 2,081 passed on; the announces (116 per
  churn event) are mostly those relearned paths passed on again. A hop-count feasibility
  rule cannot tell a longer path around the break from one through this node; Babel answers
  with sequence numbers: a starved node asks the destination for a newer announce, any path
  of which is feasible. Not built.
- TABLE frames grow (7 -> 29 per churn event at 100 nodes, 9 -> 257 at 1,000, 1,047 at
  5,000): the re-shares that answer a repair go in one TABLE per link and per wait, more of
  them than before.
- Direct messages: every one is delivered, the median costs the shortest path, but the mean
  misses the 1.5 target (3.41, 5.01, 29.3, 55.7): a few messages flood the mesh. Far nodes keep
  their paths to a node that left, so its sender's FLOOD-flagged third try (the outbox's
  guard against a path that swallows traffic) floods from the sender instead of waiting there
  as before; HELD sends it along the path, but only through the nodes the notice passed, and
  a relay it did not pass floods it (traced at 300 nodes: the one message of 1,111
  transmissions). Without the cut-off rule of the departures, receipts for a node that came
  back waited where its return was not heard, and the mean at 300 nodes was 11.8.
- Wall time falls (1,000 nodes: 82.7 s over two processes, against 105.8 s in the table
  above; 5,000 nodes: 34 min against 55), and memory too (5,000 nodes: 2.5 MiB per node against
  3.8): fewer announces means fewer seen ids. Room delivery to members online throughout was
  100% at 5,000 nodes with local repair; the 99.89% before was measured before the hop marks
  of the section above, so this run does not say which of the two made the difference.
- So `local_departures` stays off by default (meshnotes does not set it): the targets of
  50 frames per churn event at 5,000 nodes and 1.5x the shortest path are not met.
  `tests/sim/test_local_repair.py` keeps the 300-node figures (below 400 frames per churn
  event, against 1,968, with every direct and room message delivered) and
  `tests/mesh/routing/test_departures.py` each rule.

**Estimate, not measured: churn cost at 20,000, 100,000 and 1,000,000 nodes with these two.** A
least-squares line through the logarithms of the four measured sizes above (100, 300, 1,000,
5,000 nodes) gives frames per churn event growing as n^1.03 with local repair and n^1.10 before
it. Carried on (the method and nothing more): about 21,000 frames per churn event at 20,000
nodes, 109,000 at 100,000 and 1.2 million at 1,000,000 with local repair, against 201,000, 1.2
million and 15 million before. Either way the cost grows with the mesh, not the neighbourhood,
and every simulated node holds a path to every other (2.5-3.8 MiB per node at 5,000 nodes:
more than 50 GB at 20,000, on a machine with 23 GB).

**What was chosen.** Both tries above keep a path to every node, so a leave or a return must
reach every node whose path it changes: the cost follows the mesh whatever the repair does.
What keeps it local is fewer paths: announces that stop at a radius, and far paths learned on
demand (Reticulum's path requests, AODV's route discovery with an expanding ring), the
`zones` mode of the next section. Of the three shapes the work named, scoped announces with
requests on demand needed no new state beyond the path table and the parking lot, keep
store-and-forward, parking and the room trees working, and met the targets in the runs below;
a DHT-style lookup would need a second routing structure kept up under the same churn, and
was not built.

**20,000 nodes: three losses traced, and fixed.** The first two runs of `zones` at 20,000
nodes each lost one direct message of 100 and left the note short of two edits at two members;
the two fixes made after the first run's trace (a late retry renews a parked copy's wait; room
envelopes made with no link go out on every link once links settle) were real defects, but not
these losses. A trace of every DATA, NOTE and PATH frame involved (one process, 21 minutes)
found three causes:
- *The note.* Both members never left. The edits, made while their author was away, went out
  when it came back, before its announces had rebuilt its room tree; the copies that came near
  the two members had crossed 7-8 links on fast, long paths and had no hops left, and with
  their links up no inventory was swapped. Now a room member also sends its inventory to one
  neighbour every 30 s in turn (`inventories_routine`; docs/notes.md), and gets what a flood
  missed from a neighbour's log.
- *The message, first cause.* A PATH answer travels back where the request's fastest copy came
  from: the first answer to reach the sender had come 8 links from a node 2 from the
  destination, so the sender learned a 10-link path and sent the message along it, to die at
  its hop limit. An answer whose path comes to more than 8 links is now refused
  (`dropped_path_too_long`); a shorter one came 7 ms later.
- *The message, second cause* (found by the same trace after that fix): a relay on the shorter
  path had learned a 5-link path from one answer and then dropped it for an 8-link one from
  another answer 25 ms later (a path beyond the radius gives way to a newer answer, since it
  may have broken farther on unseen). Of answers to the same asking (within 2 s) the shorter
  path now stays.

After the three fixes, every direct message and every note edit arrived at every size, 20,000
nodes included (the table below; at 20,000 nodes 102 answers were refused as too long, 572
routine inventories were sent, and the note converged 9.0 s after the last return). In the
table below, the `zones` rows are runs made after these fixes, one after the other with
nothing else running on the machine; the other modes' rows are the earlier
runs, made before the routine inventories (which add a few inventories per room member and
change no path; those modes ask for none), the first 1,000-node ones while the test suite
ran beside them.
"""
