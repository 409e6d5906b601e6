"""Fixtures shared by several test files."""
import functools
import http.server
import logging
import threading

import pytest
import torch
from mmdet.utils import register_all_modules
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """(served folder, base URL) of a local HTTP server; downloads cached under tmp_path."""
    root = tmp_path / 'served'
    root.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


@pytest.fixture(scope='module')
def mmdet_scope_one_thread():
    """mmdet's modules registered and its scope current, one torch thread, for a module's
    tests (the distillation tests run many tiny models: more threads only cost overhead)."""
    register_all_modules(init_default_scope=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield
    torch.set_num_threads(threads)


@pytest.fixture
def log_records():
    """Records of mmengine's current logger (print_log(logger='current'))."""
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def explained_configs(readme: str) -> dict:
    """{config file name: the rest of its row} for every table row of a README whose first cell
    names configs in backticks, e.g. ``| `a.py`, `b.py` | what they are | ... |``."""
    import re
    rows = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')] if line.startswith('|') \
            else []
        if len(cells) < 2:
            continue
        for name in re.findall(r'`([^`]+\.py)`', cells[0]):
            rows[name] = ' | '.join(cells[1:])
    return rows


def assert_readme_explains(readme: str, configs, where: str) -> None:
    """Each config heads a table row with something in its other cells, and no row names a
    config that does not exist."""
    rows = explained_configs(readme)
    names = {c.name for c in configs}
    missing = sorted(names - set(rows))
    empty = sorted(n for n in names & set(rows) if not rows[n].strip(' |'))
    stale = sorted(n for n in rows if n not in names  # bare names only: not a/b.py, ...x.py
                   and not any(c in n for c in '*/') and not n.startswith('...'))
    assert not missing, f'{where} has no table row for {missing}'
    assert not empty, f'{where}: the rows of {empty} say nothing'
    assert not stale, f'{where} has rows for configs that do not exist: {stale}'
