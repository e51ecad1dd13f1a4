"""The package's shape: no import cycles, the layering the README's Layout section states,
and short functions. ``python tests/test_layout.py`` prints the module map (files, lines,
who imports whom) that the README's Layout section is drawn from."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "mimdarts"
MAX_LINES = 50  # a function's body, docstring excluded; longer ones say why with "# long:"


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (packages by __init__)."""
    out = {}
    for p in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _resolve(mods: dict[str, Path], node: ast.ImportFrom | ast.Import, here: str,
             is_pkg: bool) -> list[str]:
    """The package modules an import statement in module ``here`` loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == ROOT]
    base = here.split(".") if is_pkg else here.split(".")[:-1]
    if node.level:
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != ROOT:
        return []
    # `from pkg import mod` loads pkg.mod; `from pkg import name` loads pkg
    subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
    return subs or [target]


def _lazy_exports(tree: ast.Module, here: str) -> list[str]:
    """The modules a lazy package (mimdarts._lazy) imports on first use: the values of its
    module-level ``_EXPORTS`` dict, relative to the package."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_EXPORTS"
                                                  for t in node.targets)):
            return sorted({here + v for v in ast.literal_eval(node.value).values()})
    return []


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere (module level or inside functions;
    ``if TYPE_CHECKING:`` blocks excluded), with the packages whose ``__init__`` an import
    from outside them runs."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for here, path in mods.items():
        tree = ast.parse(path.read_text())
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        targets = _lazy_exports(tree, here)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skip:
                targets += _resolve(mods, node, here, path.name == "__init__.py")
        for target in targets:
            parts = target.split(".")
            for i in range(2, len(parts) + 1):  # the packages on the way, then the module
                dep = ".".join(parts[:i])
                if dep in mods and dep != here and not here.startswith(dep + "."):
                    graph[here].add(dep)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_the_checks_see_cycles_and_lazy_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph()
    assert "mimdarts.search.loop" in graph["mimdarts.search"]  # a package's __init__
    assert "mimdarts.report" in graph["mimdarts.cli"]  # imported inside a function


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()) or [])


# (importer prefix, imported prefix): dependencies the layering forbids
FORBIDDEN = [
    ("mimdarts.train", "mimdarts.search"),  # training a cell needs no search code
    ("mimdarts.spaces", "mimdarts.search"),
    ("mimdarts.spaces", "mimdarts.train"),
    ("mimdarts.spaces", "mimdarts.nasbench201"),  # the benchmark reads the space, not back
    ("mimdarts.spaces", "mimdarts.lifecycle"),
    # the ops, their grouped forms and the registry of both stand below the mixing
    ("mimdarts.spaces.candidates", "mimdarts.spaces.mixing"),
    ("mimdarts.spaces.ops", "mimdarts.spaces.mixing"),
    ("mimdarts.spaces.grouped_ops", "mimdarts.spaces.mixing"),
    ("mimdarts.spaces.batchnorm", "mimdarts.spaces.mixing"),
    ("mimdarts.search", "mimdarts.train.loop"),  # the eval networks' size only
    ("mimdarts.runtime", "mimdarts.search"),
    ("mimdarts.schedules", "mimdarts.search"),
]


@pytest.mark.parametrize("importer,imported", FORBIDDEN)
def test_layering(importer, imported):
    bad = sorted((m, d) for m, deps in import_graph().items() for d in deps
                 if (m == importer or m.startswith(importer + "."))
                 and (d == imported or d.startswith(imported + ".")))
    assert not bad, bad


def long_functions() -> list[str]:
    """Functions whose body (docstring excluded) is longer than MAX_LINES lines and that do
    not say why with a ``# long:`` comment on their ``def`` line or the line above."""
    out = []
    for path in modules().values():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:] or body
            n = node.end_lineno - body[0].lineno + 1
            said = any("# long:" in lines[i] for i in (node.lineno - 2, node.lineno - 1) if i >= 0)
            if n > MAX_LINES and not said:
                out.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_functions_are_short():
    assert not long_functions(), long_functions()


def module_map() -> str:
    """Markdown: every module, its lines and the package modules it imports."""
    graph, mods = import_graph(), modules()
    rows = ["| module | lines | imports |", "| --- | ---: | --- |"]
    for m, path in mods.items():
        deps = ", ".join(sorted(d.removeprefix(ROOT + ".") for d in graph[m]))
        rows.append(f"| {m} | {len(path.read_text().splitlines())} | {deps} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(module_map())
    cycle = find_cycle(import_graph())
    print(f"\nimport cycles: {' -> '.join(cycle) if cycle else 'none'}")
    print(f"functions over {MAX_LINES} lines: {', '.join(long_functions()) or 'none'}")
    sys.exit(1 if cycle else 0)


def test_nothing_outside_spaces_compares_a_space_name():
    """A search space is a plug-in: its facts live in spaces/ (spaces/facts.py), so no module
    outside spaces/ tests `space == "nb201"`, keys a table by a space's name or reads its
    benchmark's log keys by name."""
    import re
    pattern = re.compile(r"""(==|!=)\s*["'](nb201|darts)["']|["'](nb201|darts)["']\s*(==|!=)|"""
                         r"""\bin\s*[\(\[{][^)\]}\n]*["'](nb201|darts)["']|"""
                         r"""^\s*["'](nb201|darts)["']\s*:\s*[\(\[{]""", re.M)
    # a benchmark's log keys ("nb201_cifar10_test") are the space's facts too
    # (SpaceFacts.benchmark); only the benchmark table's own module writes them
    bench_key = re.compile(r"""["']nb201_""")
    bad = []
    for name, path in modules().items():
        if name.startswith(f"{ROOT}.spaces"):
            continue
        text = path.read_text()
        found = [*pattern.finditer(text),
                 *(bench_key.finditer(text) if name != f"{ROOT}.nasbench201" else ())]
        for m in found:
            line = text[:m.start()].count("\n") + 1
            bad.append(f"{path.relative_to(SRC)}:{line}: {m.group(0).strip()}")
    assert not bad, bad


# the layers the tests are named after (tests/test_<layer>[_<topic>].py), like the package
TEST_LAYERS = ("api", "cli", "config", "data", "docs", "layout", "report", "run", "search",
               "spaces", "sweep", "train")


def test_tests_are_laid_out_like_the_code():
    tests = sorted(p.name for p in Path(__file__).parent.glob("test_*.py"))
    stray = [t for t in tests if t.removeprefix("test_").removesuffix(".py").split("_")[0]
             not in TEST_LAYERS]
    assert not stray, stray
