"""Scale scenarios: run the real router at 100 and 1,000 nodes, with and without churn and gossip.

Usage::

    python -m benchmarks.scale            # 100 and 1,000 nodes
    python -m benchmarks.scale --quick    # 100 nodes only
    python -m benchmarks.scale --sizes 100,1000,5000
    python -m benchmarks.scale --only 5000:flood:0 --merge  # one more run, added to the last
    python -m benchmarks.scale --report-only  # doc and plots from the last results

Each scenario runs in a process of its own, one after the other, its nodes
spread over ``--parts`` processes (default 2: one per core of a 2-core
machine), so that its wall time is what the machine can do and its memory can
be measured as the parts' proportional-set growth. ``--workers N`` runs N
scenarios at a time instead, each in one process. Writes
benchmarks/results/scale.json, docs/scale.md and docs/img/scale_*.png.
The estimate section of docs/scale.md is arithmetic on the measured figures,
not a measurement.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
import traceback
from typing import Any

from benchmarks.scale_doc import DOC, ROOT, plots, write_doc
from mesh.routing.gossip import GossipConfig
from sim.scenarios import Scenario, run

RESULTS = ROOT / "benchmarks" / "results" / "scale.json"

#: mode -> (room gossip, its settings, announce radius: 0 for announces across the mesh)
MODES: dict[str, tuple[bool, GossipConfig, int]] = {
    "flood": (False, GossipConfig(), 0),
    "gossip D=6": (True, GossipConfig(), 0),  # d_lo 4, d_hi 12: the bounds
    # each envelope down its author's reverse shortest-path tree, IHAVE/IWANT repairing
    "gossip tree": (True, GossipConfig(tree=True), 0),
    # the tree, with announces within 2 links (but room members') and farther paths asked
    # for when traffic needs them (mesh/routing/discovery.py)
    "zones": (True, GossipConfig(tree=True), 2),
}


def _job(mode: str, scenario: Scenario, parts: int) -> dict[str, Any]:
    result = run(scenario, parts=parts)
    result["mode"] = mode
    print(
        f"  {mode:11s} n={scenario.nodes:5d} churn={scenario.churn:.0%}"
        f"  wall {result['cost']['wall_seconds']:7.1f}s"
        f"  CPU {result['cost']['cpu_seconds']:7.1f}s"
        f"  direct {result['direct']['delivery_ratio']:.3f}"
        f"  room copies/member {result['room']['copies_per_member']['mean']}",
        flush=True,
    )
    return result


def _in_a_process(job: tuple[str, Scenario], parts: int, out: Any) -> None:
    try:
        out.send(("ok", _job(*job, parts)))
    except BaseException as exc:  # reported by run_jobs, in the parent
        traceback.print_exc()
        out.send(("error", f"{type(exc).__name__}: {exc}"))


def run_jobs(jobs: list[tuple[str, Scenario]], parts: int, workers: int) -> list[dict[str, Any]]:
    """Each job in a fresh process (its memory measured from a clean start), `workers` at once."""
    ctx = multiprocessing.get_context("fork")
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    waiting = list(enumerate(jobs))
    running: list[tuple[int, Any, Any]] = []
    while waiting or running:
        while waiting and len(running) < workers:
            i, job = waiting.pop(0)
            read, write = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_in_a_process, args=(job, parts, write))
            process.start()
            write.close()
            running.append((i, process, read))
        i, process, read = running.pop(0)
        try:
            status, value = read.recv()
        except EOFError:
            status, value = "error", f"its process exited with code {process.exitcode}"
        process.join()
        if status != "ok":
            for _, other, _ in running:
                other.kill()
            mode, scenario = jobs[i]
            raise RuntimeError(f"{scenario.nodes}:{mode}:{scenario.churn}: {value}")
        results[i] = value
    return [r for r in results if r is not None]


def _scenario(nodes: int, mode: str, churn: float, seed: int) -> tuple[str, Scenario]:
    gossip, cfg, radius = MODES[mode]
    return mode, Scenario(
        nodes=nodes,
        churn=churn,
        gossip=gossip,
        gossip_config=cfg,
        seed=seed,
        announce_radius=radius,
    )


def scenarios(sizes: list[int], seed: int) -> list[tuple[str, Scenario]]:
    jobs = [
        _scenario(n, mode, churn, seed) for n in sizes for churn in (0.0, 0.2) for mode in MODES
    ]
    # the biggest first (with --workers, they then finish together)
    return sorted(jobs, key=lambda j: (-j[1].nodes, -j[1].churn))


# -- report ------------------------------------------------------------------


def _only(spec: str, seed: int) -> tuple[str, Scenario]:
    """One --only scenario: NODES:MODE:CHURN, churn as a share (0.2) or a percentage (20%)."""
    parts = spec.split(":")
    if len(parts) != 3:
        raise ValueError(f"--only {spec!r}: expected NODES:MODE:CHURN, say 1000:gossip tree:0.2")
    nodes_text, mode, churn_text = parts
    if mode not in MODES:
        raise ValueError(f"--only {spec!r}: mode must be one of {', '.join(MODES)}")
    try:
        nodes = int(nodes_text)
        churn = float(churn_text.rstrip("%")) / (100 if churn_text.endswith("%") else 1)
    except ValueError:
        raise ValueError(f"--only {spec!r}: NODES is a whole number, CHURN a share") from None
    if nodes < 2 or not 0.0 <= churn <= 1.0:
        raise ValueError(f"--only {spec!r}: NODES >= 2, CHURN from 0 to 1 (or 0% to 100%)")
    return _scenario(nodes, mode, churn, seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 nodes only")
    parser.add_argument("--sizes", default=None, help="comma-separated node counts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--parts",
        type=int,
        default=None,
        help="processes each scenario's nodes are spread over (default 2; 1 with --workers)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="scenarios at a time (each then in one process)"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the doc and plots from scale.json"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NODES:MODE:CHURN",
        help="run just these scenarios (say 5000:flood:0 or 20000:zones:0.2); repeatable",
    )
    parser.add_argument(
        "--merge", action="store_true", help="add to (or replace in) the last results"
    )
    args = parser.parse_args(argv)
    if args.parts is None:
        args.parts = 2 if args.workers == 1 else 1
    if args.parts < 1 or args.workers < 1:
        parser.error("--parts and --workers: 1 or more")
    if args.parts > 1 and args.workers > 1:
        parser.error("--parts or --workers: spread one scenario, or run several at once")
    sizes = [100] if args.quick else [100, 1000]
    if args.sizes is not None:
        try:
            sizes = [int(s) for s in args.sizes.split(",")]
        except ValueError:
            sizes = []
        if not sizes or min(sizes) < 2:
            parser.error(f"--sizes {args.sizes!r}: comma-separated node counts of 2 or more")
    if args.report_only:
        if not RESULTS.exists():
            parser.error(f"--report-only: no {RESULTS.relative_to(ROOT)} yet; run the scenarios")
        results = json.loads(RESULTS.read_text())
        sizes = sorted({r["graph"]["nodes"] for r in results})
        write_doc(results, plots(results), sizes, MODES)
        print(f"wrote {DOC.relative_to(ROOT)} from {RESULTS.relative_to(ROOT)}")
        return 0
    jobs = scenarios(sizes, args.seed)
    if args.only:
        try:
            jobs = [_only(spec, args.seed) for spec in args.only]
        except ValueError as exc:
            parser.error(str(exc))
    if args.workers > 1:
        print(f"{len(jobs)} scenarios, {args.workers} at a time", flush=True)
    else:
        print(f"{len(jobs)} scenarios, each over {args.parts} processes", flush=True)
    started = time.perf_counter()
    try:
        results = run_jobs(jobs, args.parts, args.workers)
    except RuntimeError as exc:
        print(f"benchmarks.scale: a scenario failed: {exc}", file=sys.stderr)
        return 1
    print(f"all done in {time.perf_counter() - started:.0f} s", flush=True)
    if args.merge and RESULTS.exists():

        def key(r: dict[str, Any]) -> tuple[int, float, str]:
            return (r["graph"]["nodes"], r["scenario"]["churn"], r["mode"])

        fresh = {key(r) for r in results}
        results = [r for r in json.loads(RESULTS.read_text()) if key(r) not in fresh] + results
    sizes = sorted({r["graph"]["nodes"] for r in results})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    drawn = plots(results)
    write_doc(results, drawn, sizes, MODES)
    print(f"wrote {RESULTS.relative_to(ROOT)}, {DOC.relative_to(ROOT)}, {len(drawn)} plots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
