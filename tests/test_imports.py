"""No module of lrnb imports, directly or through others, a module that imports it back: the modules stand on floors
(design notes §8), each importing only from those below it. Imports inside functions count as much as those at the
top (a lazy import hides a circle, it does not remove it)."""
import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / 'lrnb'


def imported(tree: ast.Module, modules: set[str]) -> set[str]:
    "The lrnb modules (names in `modules`; '__init__' for the package) that `tree` imports anywhere in its code."
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split('.')
                if parts[0] == 'lrnb': found.add(parts[1] if len(parts) > 1 and parts[1] in modules else '__init__')
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and not (node.module or '').split('.')[0] == 'lrnb': continue
            if node.level > 1: continue   # above the package
            path = (node.module or '').split('.')
            if node.level == 0: path = path[1:]   # `from lrnb.x import ...` -> x
            if path and path[0]: found.add(path[0] if path[0] in modules else '__init__')
            else: found |= {a.name if a.name in modules else '__init__' for a in node.names}   # `from . import x`
    return found


def import_graph(lib: Path = LIB) -> dict[str, set[str]]:
    "module -> the lrnb modules it imports, for every lrnb/*.py in `lib`."
    modules = {p.stem for p in lib.glob('*.py')}
    return {p.stem: imported(ast.parse(p.read_text(), str(p)), modules) - {p.stem} for p in sorted(lib.glob('*.py'))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    "A circle of imports in `graph` as [a, b, ..., a], or None if there is none."
    state, path = {}, []   # state: 1 on the current path, 2 finished
    def visit(m):
        state[m] = 1; path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1: return path[path.index(n):] + [n]
            if n not in state and (found := visit(n)): return found
        state[m] = 2; path.pop()
        return None
    for m in sorted(graph):
        if m not in state and (found := visit(m)): return found
    return None


def test_finds_a_circle_through_a_lazy_import():
    code = {'a': "from .b import f", 'b': "def f():\n    from lrnb.c import g\n    return g", 'c': "import lrnb.a"}
    modules = set(code)
    graph = {m: imported(ast.parse(src), modules) for m, src in code.items()}
    assert graph == {'a': {'b'}, 'b': {'c'}, 'c': {'a'}}
    assert find_cycle(graph) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None


def test_no_import_circles():
    graph = import_graph()
    assert {'compress', 'bench', 'cli'} <= graph.keys(), sorted(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "lrnb modules import each other in a circle: " + ' -> '.join(cycle)
