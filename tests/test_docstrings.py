"""Public classes and functions are documented in mmdet's form.

Every name a subpackage exports (its ``__all__``) that takes arguments has an ``Args:``
section listing each of them as ``name (type): meaning``, with ``Default: x`` for the ones
that have a default; a class documents its constructor's arguments (or, when it inherits the
constructor, refers to the class that documents them).
"""
import importlib
import inspect
import re

import pytest

SUBPACKAGES = ['cnn', 'checkpoint', 'datasets', 'models', 'apis', 'deployment', 'planning', 'zoo',
               'utils']


def public_callables():
    seen = set()
    for sub in SUBPACKAGES:
        module = importlib.import_module(f'mmdet_compconv.{sub}')
        for name in module.__all__:
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj not in seen:
                seen.add(obj)
                yield pytest.param(obj, id=f'{sub}.{name}')


def documented_args(doc: str) -> dict:
    """{argument: its description} from the ``Args:`` section of a cleaned docstring."""
    lines = doc.splitlines()
    if 'Args:' not in lines:
        return {}
    args, current = {}, None
    for line in lines[lines.index('Args:') + 1:]:
        if line and not line.startswith(' '):
            break  # the next section
        entry = re.match(r'^    (\*{0,2}\w+) \(([^)]+)\):(.*)$', line)
        if entry:
            current = entry.group(1).lstrip('*')
            args[current] = entry.group(3)
        elif current and line.startswith('        '):
            args[current] += ' ' + line.strip()
    return args


def arguments(obj):
    func = obj.__init__ if inspect.isclass(obj) else obj
    params = list(inspect.signature(func).parameters.values())
    return [p for p in params if p.name not in ('self', 'cls')
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.mark.parametrize('obj', public_callables())
def test_arguments_are_documented_with_type_and_default(obj):
    params = arguments(obj)
    if not params:
        return
    # a class that inherits its constructor may refer to the class that defines it
    owner = next((c for c in obj.__mro__ if '__init__' in vars(c)), obj) \
        if inspect.isclass(obj) else obj
    args = documented_args(inspect.getdoc(obj) or '') or documented_args(
        inspect.getdoc(owner) or '')
    undocumented = [p.name for p in params if p.name not in args]
    assert not undocumented, (f'{obj.__qualname__}: arguments without a "name (type): ..." '
                              f'entry under Args: {undocumented}')
    no_default = [p.name for p in params
                  if p.default is not p.empty and 'Default' not in args[p.name]]
    assert not no_default, f'{obj.__qualname__}: arguments whose default is not given: {no_default}'


def test_documented_args_reads_mmdets_form():
    doc = inspect.cleandoc('''Summary.

    Args:
        depth (int): the depth.
        c0 (float): C_0, on two
            lines. Default: 128.
        **kwargs: the rest.

    Returns:
        int: a value.
    ''')
    assert documented_args(doc) == {'depth': ' the depth.',
                                    'c0': ' C_0, on two lines. Default: 128.'}
