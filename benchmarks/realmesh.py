"""The simulator checked against real processes: ``python -m benchmarks.realmesh``.

Starts ``--nodes`` real ``meshnotes run --headless`` processes (benchmarks/netmesh.py: each in
its own network namespace where that is permitted, on 127.0.0.1 otherwise) on a random
connected graph of mean degree 4, every link 20-80 ms each way and cut at random by the
userspace shaper. Once every link is up and every node has joined one room (and holds its
shared note), it runs for ``--minutes``: a fifth of the nodes are killed with SIGKILL at random
times and restarted a while later, while direct messages between random pairs (one every
``--dm-every`` seconds), room messages (one every ``--post-every`` seconds) and edits of the
shared note (three each by five members, two of them among the killed) go on through the
nodes' control sockets. Then it waits for the stragglers and measures, from each node's own
database: every direct message delivered and its delay from sending to storing, every room
message at every member that was never killed, the note's text byte-identical everywhere.

Then the same graph, link delays, absences, connection cuts and traffic are replayed on the
simulator (sim/replay.py), and both are printed side by side (and written as JSON with
``--out``). All nodes share this machine's clock, so the delays need no clock sync.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.netmesh import NetMesh, Node, unavailable
from sim.graph import Graph
from sim.replay import Trace, replay

RESTART_GRACE = 15.0  # seconds after a restart before the node is asked to send anything
NOTE_WAIT = 180.0  # most seconds to wait for the new note to reach every node


@dataclass(frozen=True)
class Plan:
    """Everything a run does, drawn from its seed; times in seconds after the start."""

    n: int
    edges: list[tuple[int, int]]
    delays: list[float]
    kills: list[tuple[int, float, float]]  # (node, killed, restarted)
    dms: list[tuple[int, int, float]]
    posts: list[tuple[int, float]]
    edits: list[tuple[int, float]]
    duration: float
    cut_mean: float
    seed: int

    def up_at(self, node: int, t: float) -> bool:
        """Whether `node` runs (and has had time to start again) at `t`."""
        return all(not (k <= t < r + RESTART_GRACE) for m, k, r in self.kills if m == node)

    @property
    def killed(self) -> set[int]:
        return {m for m, _, _ in self.kills}


def make_plan(
    nodes: int,
    minutes: float,
    seed: int,
    *,
    churn: float = 0.2,
    dm_every: float = 2.0,
    post_every: float = 5.0,
    cut_mean: float = 60.0,
    editors: int = 5,
) -> Plan:
    rng = random.Random(seed)
    graph = Graph.random(nodes, 4.0, rng)
    delays = [round(rng.uniform(0.020, 0.080), 4) for _ in graph.edges]
    duration = 60.0 * minutes
    kills = []
    for node in sorted(rng.sample(range(nodes), max(1, round(churn * nodes)))):
        killed = rng.uniform(0.05, 0.7) * duration
        kills.append((node, killed, killed + rng.uniform(0.05, 0.15) * duration))
    plan = Plan(nodes, graph.edges, delays, kills, [], [], [], duration, cut_mean, seed)

    def online(t: float, among: list[int] | None = None) -> list[int]:
        return [m for m in (among or range(nodes)) if plan.up_at(m, t)]

    for k in range(int(duration / dm_every)):
        t = (k + rng.random()) * dm_every
        sender = rng.choice(online(t))
        plan.dms.append((sender, rng.choice([m for m in range(nodes) if m != sender]), t))
    for k in range(int(duration / post_every)):
        t = (k + rng.random()) * post_every
        plan.posts.append((rng.choice(online(t)), t))
    killed = sorted(plan.killed)
    chosen = rng.sample(killed, min(2, len(killed)))
    chosen += rng.sample(sorted(set(range(nodes)) - set(chosen)), min(editors, nodes) - len(chosen))
    for member in chosen:
        for _ in range(3):
            t = rng.uniform(0.0, 0.9 * duration)
            if plan.up_at(member, t):
                plan.edits.append((member, t))
    plan.edits.sort(key=lambda e: e[1])
    return plan


@dataclass
class Record:
    """What the real run did and saw."""

    sent_dms: dict[int, float] = field(default_factory=dict)  # number -> unix time sent
    sent_posts: dict[int, float] = field(default_factory=dict)
    edits: list[str] = field(default_factory=list)
    failed_calls: int = 0
    setup_seconds: float = 0.0
    start: float = 0.0
    away: list[tuple[int, float, float]] = field(default_factory=list)
    note_converged: bool = False
    note_bytes: int = 0  # the longest text held
    note_holders: int = 0  # nodes holding the note at the end
    note_versions: int = 0  # distinct texts among them
    note_edits_held: int = 0  # edits in the text that holds fewest


def progress(text: str) -> None:
    """One line on stderr: where a long run is."""
    print(time.strftime("%H:%M:%S"), text, file=sys.stderr, flush=True)


def _wait(condition: Any, timeout: float, what: str, mesh: NetMesh) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}\n{mesh.logs()}")
        time.sleep(0.5)


def _linked(node: Node, degree: int) -> bool:
    status = node.ask("status")
    return status is not None and len({link["peer_id"] for link in status["links"]}) >= degree


def stored(node: Node) -> dict[str, float]:
    """Text -> when this node stored it, for every message in its database."""
    path = node.home / "meshnotes.db"
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            rows = db.execute("SELECT text, stored_at FROM messages").fetchall()
    except sqlite3.Error:
        return {}
    return {text: float(at) for text, at in rows}


def setup(mesh: NetMesh, plan: Plan) -> tuple[str, str]:
    """Start every node, wait for every link, one room of all and its note: (room, note)."""
    for node in mesh.nodes:
        node.start()
    degree = [0] * plan.n
    for u, v in plan.edges:
        degree[u] += 1
        degree[v] += 1
    for node in mesh.nodes:
        _wait(lambda n=node: n.ask("status") is not None, 120, f"{node.name} to start", mesh)
    for node in mesh.nodes:
        d = degree[node.index]
        _wait(lambda n=node, d=d: _linked(n, d), 180, f"{node.name}'s links", mesh)
    progress(f"{plan.n} nodes started, every link up")
    first = mesh.nodes[0]
    room = first.ask("room_new", "everyone")["room_id"]
    for node in mesh.nodes[1:]:
        first.ask("room_invite", room, node.peer_id)
    for node in mesh.nodes[1:]:
        _wait(
            lambda n=node: n.ask("room_join", room) is not None, 300, f"{node.name} to join", mesh
        )
    progress("every node joined the room")
    note = first.ask("note_new", room, "shared")["note_id"]
    # the note's key reaches each member from the admin, answering its join; under a burst of
    # joins on a loaded machine that can lag: start anyway after a while (the end checks
    # convergence everywhere)
    end = time.monotonic() + NOTE_WAIT
    while time.monotonic() < end and len(_holding(mesh, note)) < plan.n:
        time.sleep(1)
    progress(f"{len(_holding(mesh, note))} of {plan.n} nodes hold the note")
    return room, note


def _holding(mesh: NetMesh, note: str) -> list[int]:
    return [node.index for node in mesh.nodes if node.ask("note_cat", note) is not None]


def drive(mesh: NetMesh, plan: Plan, room: str, note: str, record: Record) -> None:
    """Play the plan's kills, restarts and traffic at their times."""
    events: list[tuple[float, int, str, tuple[int, ...]]] = []
    for node, killed, restarted in plan.kills:
        events += [(killed, 0, "kill", (node,)), (restarted, 0, "restart", (node,))]
    events += [(t, 1, "dm", (a, b, k)) for k, (a, b, t) in enumerate(plan.dms)]
    events += [(t, 1, "post", (a, k)) for k, (a, t) in enumerate(plan.posts)]
    events += [(t, 1, "edit", (a, k)) for k, (a, t) in enumerate(plan.edits)]
    events.sort()
    record.start = time.time()
    left: dict[int, float] = {}
    for t, _, kind, args in events:
        time.sleep(max(0.0, record.start + t - time.time()))
        now = time.time()
        node = mesh.nodes[args[0]]
        if kind == "kill":
            progress(f"kill -9 {node.name}")
            node.kill()
            left[node.index] = now - record.start
        elif kind == "restart":
            progress(f"restart {node.name}")
            node.start()
            record.away.append((node.index, left.pop(node.index), now - record.start))
        elif kind == "dm":
            if node.ask("dm", mesh.nodes[args[1]].peer_id, f"dm {args[2]}") is not None:
                record.sent_dms[args[2]] = now
            else:
                record.failed_calls += 1
        elif kind == "post":
            if node.ask("say", room, f"post {args[1]}") is not None:
                record.sent_posts[args[1]] = now
            else:
                record.failed_calls += 1
        else:
            text = f"edit {args[1]} by {node.name}\n"
            if node.ask("note_append", note, text) is not None:
                record.edits.append(text)
            else:
                record.failed_calls += 1
    time.sleep(max(0.0, record.start + plan.duration - time.time()))


def observe(mesh: NetMesh, plan: Plan, record: Record) -> dict[str, Any]:
    """Delays of what arrived, from each node's database."""
    seen = [stored(node) for node in mesh.nodes]
    dm_delays: dict[int, float] = {}
    for k, sent in record.sent_dms.items():
        at = seen[plan.dms[k][1]].get(f"dm {k}")
        if at is not None:
            dm_delays[k] = at - sent
    post_delays: dict[int, dict[int, float]] = {}
    for k, sent in record.sent_posts.items():
        author = plan.posts[k][0]
        post_delays[k] = {
            m: seen[m][f"post {k}"] - sent
            for m in range(plan.n)
            if m != author and f"post {k}" in seen[m]
        }
    return {"dm_delays": dm_delays, "post_delays": post_delays}


def note_converged(mesh: NetMesh, note: str, record: Record) -> bool:
    """Whether every node holds the note, with one text holding every edit made."""
    texts = [node.ask("note_cat", note) for node in mesh.nodes]
    bodies = [t["text"] for t in texts if t is not None]
    record.note_holders = len(bodies)
    record.note_versions = len(set(bodies))
    record.note_bytes = max((len(b.encode()) for b in bodies), default=0)
    record.note_edits_held = min(
        (sum(edit in b for edit in record.edits) for b in bodies), default=0
    )
    return (
        len(bodies) == mesh.n
        and record.note_versions == 1
        and record.note_edits_held == len(record.edits)
    )


def complete(mesh: NetMesh, plan: Plan, record: Record, note: str) -> bool:
    seen = observe(mesh, plan, record)
    stable = set(range(plan.n)) - plan.killed
    return (
        len(seen["dm_delays"]) == len(record.sent_dms)
        and all(stable - {plan.posts[k][0]} <= set(got) for k, got in seen["post_delays"].items())
        and note_converged(mesh, note, record)
    )


def run_real(plan: Plan, root: Path, netns: bool, drain: float) -> tuple[Record, dict[str, Any]]:
    mesh = NetMesh(root, plan.n, plan.edges, plan.delays, plan.cut_mean, plan.seed, netns)
    record = Record()
    try:
        began = time.monotonic()
        mesh.build()
        room, note = setup(mesh, plan)
        record.setup_seconds = round(time.monotonic() - began, 1)
        progress(f"set up in {record.setup_seconds} s; traffic and churn for {plan.duration} s")
        drive(mesh, plan, room, note, record)
        progress("traffic over; waiting for the stragglers")
        end = time.monotonic() + drain
        while not complete(mesh, plan, record, note) and time.monotonic() < end:
            time.sleep(5)
        record.note_converged = note_converged(mesh, note, record)
        seen = observe(mesh, plan, record)
        seen["cuts"] = [(e, t - record.start) for e, t in mesh.cuts() if t >= record.start]
        seen["ended"] = time.time()
    finally:
        mesh.close()
    return record, seen


def _stats(delays: list[float]) -> dict[str, float | None]:
    if not delays:
        return {"median": None, "p95": None}
    ordered = sorted(delays)
    return {
        "median": round(statistics.median(ordered), 3),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
    }


def summarize(
    plan: Plan,
    sent_dms: list[int],
    sent_posts: list[int],
    dm_delays: dict[int, float],
    post_delays: dict[int, dict[int, float]],
) -> dict[str, Any]:
    """Delivery and delay figures over the messages really sent."""
    stable = set(range(plan.n)) - plan.killed
    owed = got = 0
    room: list[float] = []
    for k in sent_posts:
        members = stable - {plan.posts[k][0]}
        owed += len(members)
        got += sum(1 for m in members if m in post_delays.get(k, {}))
        room += [d for m, d in post_delays.get(k, {}).items() if m in members]
    dms = [dm_delays[k] for k in sent_dms if k in dm_delays]
    return {
        "dms_sent": len(sent_dms),
        "dms_delivered": len(dms),
        "dm_delivery": round(len(dms) / len(sent_dms), 4) if sent_dms else None,
        "dm_delay_s": _stats(dms),
        "room_owed": owed,
        "room_delivered": got,
        "room_delivery": round(got / owed, 4) if owed else None,
        "room_delay_s": _stats(room),
    }


def simulate(plan: Plan, record: Record, seen: dict[str, Any]) -> dict[str, Any]:
    """The same graph, delays, absences, cuts and traffic on the simulator."""
    dms = sorted(record.sent_dms)
    posts = sorted(record.sent_posts)
    trace = Trace(
        plan.n,
        plan.edges,
        plan.delays,
        record.away,
        seen["cuts"],
        [(plan.dms[k][0], plan.dms[k][1], record.sent_dms[k] - record.start) for k in dms],
        [(plan.posts[k][0], record.sent_posts[k] - record.start) for k in posts],
        # as long as the real run lasted, the wait for stragglers included
        end=max(plan.duration, seen["ended"] - record.start),
    )
    began = time.monotonic()
    replayed = replay(trace, plan.seed)
    result = summarize(
        plan,
        dms,
        posts,
        {dms[i]: d for i, d in enumerate(replayed.dm_delays) if d is not None},
        {posts[i]: d for i, d in enumerate(replayed.post_delays)},
    )
    result["transmissions"] = replayed.transmissions
    result["wall_seconds"] = round(time.monotonic() - began, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dm-every", type=float, default=2.0, help="seconds between DMs")
    parser.add_argument("--post-every", type=float, default=5.0, help="between room messages")
    parser.add_argument("--cut-mean", type=float, default=60.0, help="mean connection life (s)")
    parser.add_argument("--drain", type=float, default=300.0, help="most seconds to wait after")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = parser.parse_args(argv)
    if args.nodes < 3 or args.minutes <= 0:
        parser.error("--nodes must be at least 3 and --minutes positive")
    reason = unavailable()
    if reason is not None:
        print(f"realmesh: no network namespaces ({reason}): every node on 127.0.0.1")
    plan = make_plan(
        args.nodes,
        args.minutes,
        args.seed,
        dm_every=args.dm_every,
        post_every=args.post_every,
        cut_mean=args.cut_mean,
    )
    with tempfile.TemporaryDirectory(prefix="realmesh-") as tmp:
        record, seen = run_real(plan, Path(tmp), reason is None, args.drain)
    report = {
        "setup": {
            "nodes": plan.n,
            "links": len(plan.edges),
            "minutes": args.minutes,
            "seed": plan.seed,
            "netns": reason is None,
            "killed": len(plan.kills),
            "cuts": len(seen["cuts"]),
            "failed_calls": record.failed_calls,
            "setup_seconds": record.setup_seconds,
        },
        "real": summarize(
            plan,
            sorted(record.sent_dms),
            sorted(record.sent_posts),
            seen["dm_delays"],
            seen["post_delays"],
        ),
        "note": {
            "edits": len(record.edits),
            "converged": record.note_converged,
            "bytes": record.note_bytes,
            "holders": record.note_holders,
            "versions": record.note_versions,
            "fewest_edits_held": record.note_edits_held,
        },
    }
    report["simulated"] = simulate(plan, record, seen)
    report["away"] = [(m, round(left, 1), round(back, 1)) for m, left, back in record.away]
    print(table(report))
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["note"]["converged"] else 1


def table(report: dict[str, Any]) -> str:
    """The real and simulated figures side by side, as a Markdown table."""
    real, sim = report["real"], report["simulated"]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.2f}%"

    def sec(x: float | None) -> str:
        return "-" if x is None else f"{1000 * x:.0f} ms"

    rows = [
        ("DMs delivered", f"{real['dms_delivered']}/{real['dms_sent']}",
         f"{sim['dms_delivered']}/{sim['dms_sent']}"),
        ("DM delivery", pct(real["dm_delivery"]), pct(sim["dm_delivery"])),
        ("DM delay, median", sec(real["dm_delay_s"]["median"]), sec(sim["dm_delay_s"]["median"])),
        ("DM delay, p95", sec(real["dm_delay_s"]["p95"]), sec(sim["dm_delay_s"]["p95"])),
        ("room deliveries (members never killed)",
         f"{real['room_delivered']}/{real['room_owed']}",
         f"{sim['room_delivered']}/{sim['room_owed']}"),
        ("room delivery", pct(real["room_delivery"]), pct(sim["room_delivery"])),
        ("room delay, median", sec(real["room_delay_s"]["median"]),
         sec(sim["room_delay_s"]["median"])),
        ("room delay, p95", sec(real["room_delay_s"]["p95"]), sec(sim["room_delay_s"]["p95"])),
    ]  # fmt: skip
    lines = ["| figure | real processes | simulator |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    setup = report["setup"]
    note = report["note"]
    lines.append(
        f"\n{setup['nodes']} nodes, {setup['links']} links, {setup['killed']} killed and "
        f"restarted, {setup['cuts']} connections cut, {setup['failed_calls']} control calls "
        f"failed; note: {note['edits']} edits, held by {note['holders']} nodes in "
        f"{note['versions']} version(s), converged byte-identical: {note['converged']}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
