"""The benchmark scripts are not run in CI (they take minutes and need a quiet machine), so a script that calls a
harness function `scripts/bench.py` no longer has would only fail when someone next measures. These checks catch
that without running them: every script compiles, and every `bench.<name>` another script uses exists in bench.py."""

from __future__ import annotations

import ast
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _tree(name: str) -> ast.Module:
    path = SCRIPTS / name
    return ast.parse(path.read_text(), filename=str(path))


def _bench_names() -> set[str]:
    names = set()
    for node in _tree("bench.py").body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _uses_of_bench(tree: ast.Module) -> set[str]:
    return {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "bench"
    }


def test_every_python_benchmark_compiles():
    scripts = sorted(SCRIPTS.glob("*.py"))
    assert scripts, SCRIPTS
    for path in scripts:
        compile(path.read_text(), str(path), "exec")


def test_scripts_use_only_what_the_shared_harness_has():
    have = _bench_names()
    assert {"run", "pairs", "spread", "base_env", "bench_noop"} <= have
    for path in sorted(SCRIPTS.glob("bench_*.py")):
        missing = _uses_of_bench(_tree(path.name)) - have
        assert not missing, f"{path.name} uses bench.{', bench.'.join(sorted(missing))}, which scripts/bench.py lacks"


def test_the_check_sees_a_missing_function():
    tree = ast.parse("import bench\nbench.timed(['x'], {})\n")
    assert _uses_of_bench(tree) - _bench_names() == {"timed"}
