"""The domain's imports: no cycles (late imports included), and nothing from the web, Twilio or Prometheus."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = ("mfa", "models")
# The domain states facts; adapters and ops turn them into pages, TwiML and counters.
FORBIDDEN = ("flask", "werkzeug", "twilio", "prometheus_client", "api", "web", "ivr", "ops", "edge", "standin")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def domain_modules() -> dict[str, Path]:
    return {module_name(p): p for package in DOMAIN for p in sorted((ROOT / package).rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    named = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
    return named == "TYPE_CHECKING"


def imported(path: Path, name: str) -> set[str]:
    """Every module `path` imports, at the top or inside a function (a late import is still an
    edge of the graph); imports under `if TYPE_CHECKING:` are for the type checker only."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from mfa import audit`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = domain_modules()
    return {name: {m for m in imported(path, name) if m in modules and m != name} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def walk(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return found


def test_the_graph_sees_late_imports_and_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    late = imported(ROOT / "mfa" / "audit.py", "mfa.audit")
    assert {"mfa.facts", "mfa.usernames", "models"} <= late


def test_no_domain_module_takes_part_in_an_import_cycle():
    graph = import_graph()
    assert "mfa.audit" in graph and graph["mfa.audit"]
    assert [" -> ".join(cycle) for cycle in cycles(graph)] == []


@pytest.mark.parametrize("name", sorted(domain_modules()))
def test_the_domain_imports_nothing_from_the_web_twilio_or_prometheus(name):
    path = domain_modules()[name]
    outside = {m for m in imported(path, name) if m.split(".")[0] in FORBIDDEN}
    assert outside == set()


def test_the_audit_trail_imports_alone_in_a_fresh_interpreter_without_prometheus():
    script = ("import sys, mfa.audit; "
              "assert 'prometheus_client' not in sys.modules, 'prometheus_client'; "
              "assert not [m for m in sys.modules if m.split('.')[0] in ('flask', 'twilio', 'ops')]")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
