"""Fixtures shared by several test files."""
import functools
import http.server
import threading

import pytest
import torch
from mmdet.utils import register_all_modules
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
