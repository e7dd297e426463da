"""`crucible view`: a local server to explore run directories, live while they are written.

[`view`][crucible_harness.view] starts the server on a background thread and returns a
[`Viewer`][crucible_harness.Viewer]: in a notebook it displays inline (an iframe), in a script
`viewer.wait()` serves until interrupted (that is what `crucible view` does).
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from crucible_core._optional import import_optional
from crucible_harness.exceptions import RunDirectoryError

__all__ = ("Viewer", "view")

# Pages of a notebook (Jupyter on localhost, VS Code) may embed the viewer; nothing else may.
_NOTEBOOK_FRAMES = (
    "'self' http://localhost:* http://127.0.0.1:* https://localhost:* https://127.0.0.1:* "
    "vscode-webview: vscode-file:"
)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Viewer:
    """A running viewer server. Use [`view`][crucible_harness.view] to start one.

    Displays inline in a notebook (`_repr_html_` is an iframe of the viewer), and is a context
    manager that stops the server on exit.
    """

    def __init__(
        self,
        root: Path,
        *,
        host: str,
        port: int,
        token: str | None,
        page: str,
        height: int,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
    ) -> None:
        self.root = root
        """The run directory or runs root being served."""
        self.host = host
        """The address the server is bound to."""
        self.port = port
        """The port it listens on."""
        self.token = token
        """The token every request must carry (`None` on loopback without `token=`)."""
        self.height = height
        """Height of the notebook iframe in pixels."""
        self._page = page
        self._loop = loop
        self._thread = thread

    @property
    def url(self) -> str:
        """The address to open (with the token, which the server moves into a cookie)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = socket.gethostname()
        query = "" if self.token is None else f"?token={quote(self.token)}"
        return f"http://{host}:{self.port}{self._page}{query}"

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C stops it)."""
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            self.stop()
            raise

    def open(self) -> bool:
        """Open the viewer in the default web browser; False when there is none."""
        import webbrowser

        return webbrowser.open(self.url)

    def __enter__(self) -> Viewer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Viewer({str(self.root)!r}, url={self.url!r}, {state})"

    def _repr_html_(self) -> str:
        src = html.escape(self.url, quote=True)
        return (
            f'<iframe src="{src}" width="100%" height="{int(self.height)}" '
            'style="border:1px solid #d8dde6;border-radius:6px" '
            'title="crucible view" referrerpolicy="no-referrer"></iframe>'
            f'<p><a href="{src}" target="_blank" rel="noopener noreferrer">open the viewer in a tab</a></p>'
        )


def view(
    run_dir: str | Path = "runs",
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    height: int = 720,
    extensions: Sequence[Callable[[Any], None]] = (),
    start: str | None = None,
) -> Viewer:
    """Serve a run directory (or a directory of runs) to the browser, live while runs are written.

    Starts an aiohttp server on a background thread and returns at once. In a notebook the
    returned [`Viewer`][crucible_harness.Viewer] shows the viewer inline; elsewhere open
    `viewer.url`. The pages (runs, overview, samples, disagreements, latency, events) update within
    a second of a task being recorded.

    Args:
        run_dir: a run directory (with `manifest.json`) or a directory holding run directories.
        host: the address to bind; anything but loopback requires a token (one is generated
            when `token` is `None`).
        port: the port (0: any free port).
        token: a secret every request must carry; the URL carries it once.
        height: height of the notebook iframe in pixels.
        extensions: callables given the `aiohttp.web.Application` before it starts, to add routes
            behind the same guards (the framework's labs, `crucible lab`, are one).
        start: the page to open (default: the run's overview, or the runs list).

    Returns:
        The running [`Viewer`][crucible_harness.Viewer]; `stop()` it (or use `with`) when done.

    Raises:
        RunDirectoryError: if `run_dir` is not a directory.
        MissingDependencyError: if aiohttp is missing (`pip install "crucible-harness[view]"`).
    """
    import_optional("aiohttp", extra="view", distribution="crucible-harness")
    from aiohttp import web

    from crucible_harness._view._server import make_app

    root = Path(run_dir).expanduser()
    if not root.is_dir():
        raise RunDirectoryError(
            f"{str(root)!r} is not a directory; pass a run directory or the directory holding runs "
            "(the `output_dir` of `run`)",
            path=str(root),
        )
    loopback = _loopback(host)
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
    app = make_app(
        root,
        token=token or None,
        loopback=loopback,
        frame_ancestors=_NOTEBOOK_FRAMES,
        extensions=extensions,
    )
    single = (root / "manifest.json").is_file()
    page = f"/overview/{quote(root.resolve().name or 'run')}" if single else "/"
    if start is not None:
        page = start if start.startswith("/") else "/" + start

    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []
    bound: list[int] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host, port)
            loop.run_until_complete(site.start())
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            bound.append(int(sockets[0].getsockname()[1]) if sockets else port)
        except BaseException as err:
            failure.append(err)
            started.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    thread = threading.Thread(target=serve, name="crucible-view", daemon=True)
    thread.start()
    started.wait()
    if failure:
        raise failure[0]
    return Viewer(root, host=host, port=bound[0], token=token or None, page=page,
                  height=height, loop=loop, thread=thread)  # fmt: skip
