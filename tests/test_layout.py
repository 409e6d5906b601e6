"""The package's architecture: subpackages import one way, no import circle, no private imports.

Every ``import`` statement of the package and of ``tools/`` is read from the source (also the
ones inside functions, which run later but are dependencies all the same).
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'mmdet_compconv'

#: The subpackages from the bottom up; each may import only those before it (and itself).
#: ``patches`` and ``utils`` are glue above everything; the package's ``__init__`` is the top.
LAYERS = ['cnn', 'checkpoint', 'datasets', 'models', 'apis', 'deployment', 'planning', 'zoo',
          'utils', 'patches']


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def is_package(path: Path) -> bool:
    return path.name == '__init__.py'


def imports(path: Path):
    """(imported module, imported names) of every import statement in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path).split('.')
    if not is_package(path):
        here = here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                module = '.'.join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            yield module, [a.name for a in node.names]


def package_files():
    return sorted(PACKAGE.rglob('*.py'))


def internal_edges():
    """{module: set of package modules it imports}; ``from pkg import sub`` counts as sub."""
    modules = {module_name(p): p for p in package_files()}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for module, names in imports(path):
            if not module or not module.startswith('mmdet_compconv'):
                continue
            subs = [f'{module}.{n}' for n in names if f'{module}.{n}' in modules]
            targets.update(subs or [module])
        edges[name] = targets - {name}
    return edges


def layer_of(module: str) -> str:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else '__init__'


def test_the_layers_cover_every_subpackage():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / '__init__.py').exists()}
    modules = {p.stem for p in PACKAGE.glob('*.py') if p.stem != '__init__'}
    assert subpackages | modules == set(LAYERS)


def test_subpackages_import_only_the_layers_below():
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = []
    for module, targets in internal_edges().items():
        src = layer_of(module)
        if src == '__init__':
            continue
        for target in targets:
            dst = layer_of(target)
            if dst == '__init__' or rank[dst] > rank[src]:
                upward.append(f'{module} -> {target}')
    assert not upward, 'imports against the layer order:\n' + '\n'.join(upward)


def find_cycle(edges):
    """A list of modules forming a cycle, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_circle():
    # a package's __init__ re-exports its submodules: an edge from a submodule to its own
    # package's __init__ (or an ancestor's) would be a circle through the re-export
    cycle = find_cycle(internal_edges())
    assert cycle is None, ' -> '.join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None


@pytest.mark.parametrize('where', ['mmdet_compconv', 'tools'])
def test_no_private_name_is_imported_from_another_module(where):
    found = []
    for path in sorted((ROOT / where).rglob('*.py')):
        for module, names in imports(path):
            ours = module and module.startswith('mmdet_compconv')
            private = [n for n in names if n.startswith('_') and n != '__version__']
            if ours and (private or any(p.startswith('_') and p != '__init__'
                                        for p in module.split('.'))):
                found.append(f'{path.relative_to(ROOT)}: from {module} import {names}')
    assert not found, '\n'.join(found)


def test_tools_do_not_edit_sys_path():
    hacks = [str(p.relative_to(ROOT)) for p in sorted((ROOT / 'tools').rglob('*.py'))
             if 'sys.path.insert' in p.read_text()]
    assert not hacks, f'tools that put the repo on sys.path (make env installs the package): {hacks}'
