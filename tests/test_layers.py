"""The layer rules of pyproject.toml ([tool.importlinter]) hold, and would catch a wrong import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mesh", "chat", "crdt", "tui", "sim", "tests", "benchmarks")
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
    "lint-imports"
)

pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is not installed")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    assert LINT is not None
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [LINT, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_tree(target: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            target / package,
            ignore=shutil.ignore_patterns("__pycache__", "__snapshots__", "results", "data"),
        )


def test_the_layer_contracts_hold() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("mesh/wire/identity.py", "import chat.room", "front ends above notes above chat"),
        ("mesh/wire/envelope.py", "import mesh.routing.router", "inside mesh"),
        ("crdt/note.py", "import tests.conftest", "the product imports neither"),
    ],
)
def test_a_wrong_import_breaks_a_contract(
    tmp_path: Path, module: str, wrong_import: str, contract: str
) -> None:
    copy_tree(tmp_path)
    path = tmp_path / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # a deliberate layer violation\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(contract) for line in broken), result.stdout


def test_no_module_imports_itself_through_others() -> None:
    grimp = pytest.importorskip("grimp")  # import-linter's graph library
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    cycles = [
        (module, imported)
        for module in sorted(graph.modules)
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    ]
    assert cycles == []
