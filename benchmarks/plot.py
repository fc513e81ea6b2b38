"""The scaling-curve PNG of figure 7 (needs matplotlib: `pip install matplotlib`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(results: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    relay = results.get("relay", {})
    notes = results.get("notes", {}).get("catch_up_curve")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    if relay.get("sizes"):
        sizes = relay["sizes"]
        mb = lambda rates: [r * s / 1e6 for r, s in zip(rates, sizes, strict=True)]  # noqa: E731
        left.plot(sizes, mb(relay["ours"]), "o-", label="meshnotes relay (1 hop)")
        left.plot(sizes, mb(relay["ceiling"]), "s--", label="crypto ceiling (1 core)")
        left.plot(sizes, mb(relay["forwarder"]), "^:", label="plain websockets forwarder")
        left.set_xscale("log", base=2)
        left.set_yscale("log")
        left.set_xlabel("envelope size (bytes)")
        left.set_ylabel("throughput (MB/s of envelopes)")
        left.set_title("Relay throughput vs envelope size")
        left.grid(True, which="both", alpha=0.3)
        left.legend()
    if notes:
        right.plot(
            notes["edits"],
            [s * 1000 for s in notes["seconds"]],
            "o-",
            label="accept invitation -> final text",
        )
        if all(v is not None for v in notes["from_keys_s"]):
            right.plot(
                notes["edits"],
                [s * 1000 for s in notes["from_keys_s"]],
                "s--",
                label="document keys -> final text",
            )
        right.axhline(100, color="grey", linestyle=":", label="target 100 ms")
        right.set_xscale("log", base=2)
        right.set_yscale("log")
        right.set_xlabel("note history (edits of automerge-paper)")
        right.set_ylabel("catch-up time (ms), 2 hops")
        right.set_title("Note catch-up vs history length")
        right.grid(True, which="both", alpha=0.3)
        right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
