"""Real HTTP servers on the loopback interface, for checkpoints given by
URL: one that serves a folder, one that breaks off each file halfway, and
the address of one that is down."""
import functools
import http.server
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without logging every request."""

    def log_message(self, *args):
        pass


class BreaksOffHandler(QuietHandler):
    """Announces each file's whole length, sends half of it and closes the
    connection, as a dropped download does."""

    def do_GET(self):
        data = (Path(self.directory) / self.path.lstrip('/')).read_bytes()
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.close_connection = True


@contextmanager
def serving(folder, handler=QuietHandler) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 while the block runs.

    Yields:
        str: The base URL, ``http://127.0.0.1:<port>``.
    """
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()


def down_server_url() -> str:
    """The base URL of a loopback port nothing listens on (connections are
    refused at once)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    return f'http://127.0.0.1:{port}'


def local_only(monkeypatch, torch_home) -> None:
    """No proxy for loopback, and torch's hub cache in ``torch_home``."""
    monkeypatch.setenv('TORCH_HOME', str(torch_home))
    for var in ('no_proxy', 'NO_PROXY'):
        monkeypatch.setenv(var, '127.0.0.1,localhost')
