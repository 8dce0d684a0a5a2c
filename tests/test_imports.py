"""The package's import structure: lazy top-level names, no cycles, no library module
importing the command line."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rnnkit

ROOT = Path(rnnkit.__file__).resolve().parent
CLI = ("rnnkit.cli", "rnnkit.__main__")          # the command line and what runs it


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def is_cli(name: str) -> bool:
    return any(name == c or name.startswith(c + ".") for c in CLI)


def resolve(name: str) -> str | None:
    """The rnnkit module that ``import name`` loads (a name inside a module: the module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imported(module: str, tree: ast.AST, top_level_only: bool) -> set[str]:
    """The rnnkit modules that ``module``'s import statements name. ``top_level_only``:
    those run when the module is imported (not inside functions or TYPE_CHECKING blocks)."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            lazy = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                lazy = True
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1]
                                    + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in child.names]     # a submodule, or a name in base
            else:
                visit(child, lazy)
                continue
            if top_level_only and in_function:
                continue
            for n in names:
                target = resolve(n)
                if target is not None and target != module:
                    found.add(target)

    visit(tree, False)
    return found


TREES = {m: ast.parse(p.read_text(encoding="utf-8")) for m, p in MODULES.items()}


def ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def test_no_library_module_imports_the_cli():
    offenders = {m: sorted(t for t in imported(m, TREES[m], top_level_only=False) if is_cli(t))
                 for m in MODULES if not is_cli(m)}
    offenders = {m: t for m, t in offenders.items() if t}
    assert not offenders, f"library modules importing the command line: {offenders}"


def find_cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def strongconnect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            strongconnect(v)
    return cycles


def import_graph() -> dict:
    """Import-time edges: a module, and the packages it loads on the way (except its own
    parents, which are already loading when it runs)."""
    graph = {}
    for m in MODULES:
        edges = set()
        for t in imported(m, TREES[m], top_level_only=True):
            edges.add(t)
            edges.update(a for a in ancestors(t) if a not in ancestors(m))
        graph[m] = edges - {m}
    return graph


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, f"import cycles among rnnkit modules: {cycles}"


def test_the_checks_see_edges_and_cycles():
    """Guards the checks above against finding nothing: known edges are found, a lazy
    import is told from an eager one, and a cycle is reported."""
    graph = import_graph()
    assert "rnnkit.layers" in graph["rnnkit.models.base"]
    assert any(t.startswith("rnnkit.optim") for m in graph if m.startswith("rnnkit.train") for t in graph[m])
    gradflow = TREES["rnnkit.diagnostics.gradflow"]
    lazy = imported("rnnkit.diagnostics.gradflow", gradflow, top_level_only=False)
    eager = imported("rnnkit.diagnostics.gradflow", gradflow, top_level_only=True)
    assert any(t.startswith("rnnkit.optim") for t in lazy - eager)
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles(dict(graph, **{"rnnkit.layers": graph["rnnkit.layers"] | {"rnnkit.models.base"}}))


def run_python(code: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT.parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=os.sep,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_module_imports_on_its_own():
    """Each module imported first in a process with no rnnkit module loaded: an order
    dependence or a cycle would fail here. One process, rnnkit's modules unloaded
    between imports (NumPy stays loaded: it is not what is checked)."""
    names = sorted(m for m in MODULES if not m.endswith("__main__"))   # these run a program
    result = run_python(f"""
import importlib, json, sys, traceback
failed = {{}}
for name in {names!r}:
    for m in [m for m in sys.modules if m == "rnnkit" or m.startswith("rnnkit.")]:
        del sys.modules[m]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
""")
    assert result == {}, "\n".join(f"{k}:\n{v}" for k, v in result.items())


def test_import_rnnkit_loads_nothing_but_what_is_used():
    result = run_python("""
import json, sys
def loaded():
    return sorted(m for m in sys.modules if m.split(".")[0] in ("rnnkit", "numpy", "matplotlib", "torch", "onnx"))
import rnnkit as rk
bare = loaded()
rk.Recurrent
layer = loaded()
rk.CharLanguageModel
lm = loaded()
print(json.dumps({"bare": bare, "layer": layer, "lm": lm, "all": rk.__all__, "dir": dir(rk)}))
""")
    assert result["bare"] == ["rnnkit", "rnnkit._lazy", "rnnkit._version"]
    assert "rnnkit.layers" in result["layer"] and "numpy" in result["layer"]
    for unused in ("rnnkit.tasks", "rnnkit.train", "rnnkit.data", "rnnkit.models", "rnnkit.optim"):
        assert not any(m == unused or m.startswith(unused + ".") for m in result["layer"]), unused
    assert "rnnkit.tasks.lm" in result["lm"]
    for unused in ("rnnkit.tasks.forecast", "rnnkit.tasks.classify", "rnnkit.tasks.seq2seq", "rnnkit.data.series",
                   "rnnkit.data.ucr", "rnnkit.diagnostics", "rnnkit.cli", "rnnkit.export", "matplotlib", "torch",
                   "onnx"):
        assert not any(m == unused or m.startswith(unused + ".") for m in result["lm"]), unused
    assert set(result["all"]) <= set(result["dir"])


def test_every_public_name_resolves():
    for name in rnnkit.__all__:
        assert getattr(rnnkit, name) is not None, name
    assert rnnkit.Recurrent is __import__("rnnkit.layers", fromlist=["Recurrent"]).Recurrent
    assert rnnkit.optim.Adam.__module__ == "rnnkit.optim.optimizers"
    for package in ("rnnkit.data", "rnnkit.diagnostics"):
        mod = __import__(package, fromlist=["__all__"])
        for name in mod.__all__:
            assert getattr(mod, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError, match="module 'rnnkit' has no attribute 'Recurent'"):
        rnnkit.Recurent
