"""The viewer's aiohttp application: pages, a JSON API, server-sent events, and its guards.

Guards, all on every request:
- a token when one is set (any bind off loopback has one): `Authorization: Bearer`, the
  `crucible_view_token` cookie, or `?token=` once (which sets the cookie and drops it from the URL);
- on loopback, a `Host` header naming loopback (a page elsewhere cannot reach the server through
  DNS rebinding);
- a strict Content-Security-Policy: scripts and styles only from this server's files, nothing inline,
  no frames but the notebook's;
- runs are looked up by id in the index of the runs root, never by resolving a path from the URL,
  and static files come from a fixed list.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib
import ipaddress
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiohttp import web

from crucible_harness._view._data import Query, RunData, RunsIndex

__all__ = ("COOKIE", "INDEX", "PAGES", "Extension", "make_app")

COOKIE = "crucible_view_token"
PAGES = ("overview", "samples", "item", "disagreements", "latency", "events")
_STATIC = {
    "app.js": "text/javascript",
    "charts.js": "text/javascript",
    "dom.js": "text/javascript",
    "style.css": "text/css",
}
_POLL = 0.2  # seconds between looks at the run directories
_LIVE_ANALYSIS_EVERY = 5.0  # seconds between full analyses of a running run
_ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<path d="M3 2h10l-2 12H5z" fill="#2f5bd3"/></svg>'
)
INDEX: web.AppKey[RunsIndex] = web.AppKey("index", RunsIndex)
"""The application's runs index (for tests and embedding)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Extension = Callable[[web.Application], None]
"""Adds routes to the viewer's application (behind the same guards): the framework's labs."""
_SCRIPT_HASH = re.compile(r"script-src '(sha256-[A-Za-z0-9+/=]+)'")


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=str),
        status=status,
        content_type="application/json",
    )


def _csp(frame_ancestors: str) -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}"
    )


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _Analyses:
    """Full analyses (harness `analyse`) computed off the loop, cached per data version."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, float, dict[str, Any]]] = {}
        self._running: dict[str, asyncio.Task[dict[str, Any]]] = {}

    async def get(self, data: RunData) -> dict[str, Any]:
        cached = self._cache.get(data.id)
        if cached is not None:
            version, made, value = cached
            fresh = version == data.version
            recent = data.live and time.monotonic() - made < _LIVE_ANALYSIS_EVERY
            if fresh or recent:
                return value
        task = self._running.get(data.id)
        if task is None:
            version = data.version
            records = data.analysis_records()
            task = asyncio.create_task(asyncio.to_thread(_analyse, data, records))
            self._running[data.id] = task
            try:
                value = await task
            finally:
                self._running.pop(data.id, None)
            self._cache[data.id] = (version, time.monotonic(), value)
            return value
        return await asyncio.shield(task)


def _config(data: RunData) -> Any:
    from crucible_harness._experiment import AnalysisConfig, analysis_config

    settings = data.experiment.get("analysis")
    try:
        return analysis_config(settings if isinstance(settings, dict) else {})
    except (TypeError, ValueError):
        return AnalysisConfig()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (tuple, list)):
        return [_finite(v) for v in value]
    return value


def _analyse(data: RunData, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The harness's analysis of the records, plus Cohen's d_z for each paired comparison."""
    import attrs

    import crucible_bench as bench
    from crucible_harness._analysis import analyse

    config = _config(data)
    started = time.perf_counter()
    analysis = analyse(
        records,
        conditions=data.condition_names(),
        config=config,
        manifest=data.manifest,
    )
    right, counts = data.per_item_accuracy()
    names = data.condition_names()
    comparisons = []
    for c in analysis.comparisons:
        row = {k: _finite(v) for k, v in attrs.asdict(c).items()}
        ia, ib = names.index(c.a), names.index(c.b)
        both = (counts[:, ia] > 0) & (counts[:, ib] > 0)
        xa = right[both, ia] / counts[both, ia]
        xb = right[both, ib] / counts[both, ib]
        try:
            dz = bench.cohen_dz(xb, xa, confidence_level=config.confidence_level)
            row["effect"] = {"name": dz.name, "estimate": _finite(dz.estimate),
                             "ci": _finite(list(dz.confidence_interval)), "interpretation": dz.interpretation}  # fmt: skip
        except (
            bench.BenchError
        ):  # identical per-item outcomes: no spread to standardise by
            row["effect"] = None
        comparisons.append(row)
    conditions = [{k: _finite(v) for k, v in attrs.asdict(s).items()} for s in analysis.conditions]  # fmt: skip
    return {
        "version": data.version,
        "records": len(records),
        "seconds": time.perf_counter() - started,
        "config": {"alpha": config.alpha, "correction": config.correction, "confidence_level": config.confidence_level},
        "conditions": conditions,
        "comparisons": comparisons,
        "frontier": list(analysis.frontier),
        "frontier_latency": list(analysis.frontier_latency),
        "methods": analysis.methods_text(),
    }  # fmt: skip


def _warm_imports() -> None:
    import scipy.stats  # noqa: F401

    import crucible_bench  # noqa: F401


class _Hub:
    """Polls the runs root and wakes server-sent-event streams when something changed."""

    def __init__(self, index: RunsIndex) -> None:
        self.index = index
        self.generation = 0
        self.changed: dict[str, float] = {}
        self._wake = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._warm: asyncio.Future[None] | None = None

    async def start(self, _: web.Application) -> None:
        # every live update's Wilson intervals need scipy.special: import it before serving, so
        # the first update of a running run does not wait for it (seconds on a loaded machine)
        await asyncio.to_thread(importlib.import_module, "scipy.special")
        self._task = asyncio.create_task(self._loop())
        # the first analysis imports scipy and crucible-bench: do it before anyone asks
        self._warm = asyncio.create_task(asyncio.to_thread(_warm_imports))

    async def stop(self, _: web.Application) -> None:
        if self._warm is not None:
            self._warm.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(_POLL)
            changed = await asyncio.to_thread(self.index.refresh)
            if changed is not None:
                now = time.monotonic()
                for data in changed:
                    self.changed[data.id] = now
                async with self._wake:
                    self.generation += 1
                    self._wake.notify_all()

    async def wait(self, generation: int) -> int:
        """The generation after `generation`, or the same one after 15 s (for a keep-alive)."""
        async with self._wake:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(15.0):
                    await self._wake.wait_for(lambda: self.generation != generation)
            return self.generation


def make_app(
    root: str | Path,
    *,
    token: str | None = None,
    loopback: bool = True,
    frame_ancestors: str = "'none'",
    extensions: Sequence[Extension] = (),
) -> web.Application:
    """The viewer application for the runs under `root` (or the one run `root` is).

    Args:
        root: a run directory, or a directory holding run directories (searched 4 levels deep).
        token: when set, every request must carry it (header, cookie, or `?token=` once).
        loopback: the server is bound to loopback only: also refuse requests whose `Host` is not a
            loopback name (DNS rebinding).
        frame_ancestors: the CSP `frame-ancestors` value (the notebook view allows its page).
        extensions: callables that add routes to the application (served behind the same token,
            host and Content-Security-Policy guards).
    """
    index = RunsIndex(Path(root))
    index.scan(force=True)
    hub = _Hub(index)
    analyses = _Analyses()
    streams: set[asyncio.Task[Any]] = set()
    static = files("crucible_harness._view") / "static"
    shell = (static / "index.html").read_bytes()
    assets = {name: (static / name).read_bytes() for name in _STATIC}
    csp = _csp(frame_ancestors)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if loopback and not _is_loopback(_host_name(request.host)):
            return web.Response(
                status=421, text="this viewer answers on loopback names only"
            )
        if token is not None:
            given = request.query.get("token")
            header = request.headers.get("Authorization", "")
            candidates = [
                request.cookies.get(COOKIE, ""),
                header.removeprefix("Bearer ").strip(),
                given or "",
            ]
            if not any(
                c and hmac.compare_digest(c.encode(), token.encode())
                for c in candidates
            ):
                return _with_headers(
                    web.Response(
                        status=401,
                        text="a token is required: open the URL `crucible view` printed",
                    ),
                    csp,
                )
            if (
                given is not None
                and request.method == "GET"
                and not request.path.startswith("/api/")
            ):
                # the token moves into a cookie and out of the address bar and history
                query = {k: v for k, v in request.query.items() if k != "token"}
                location = str(request.rel_url.with_query(query))
                found = web.HTTPFound(location)
                found.set_cookie(
                    COOKIE, token, httponly=True, samesite="Strict", path="/"
                )
                raise _with_headers(found, csp)
        response: web.StreamResponse
        try:
            response = await handler(request)
        except web.HTTPException as err:
            _with_headers(err, csp)
            raise
        return _with_headers(response, csp)  # fmt: skip

    def run_of(request: web.Request) -> RunData:
        data = index.get(request.match_info["run"])
        if data is None:
            raise web.HTTPNotFound(text="no such run under the viewer's root")
        return data

    async def page(request: web.Request) -> web.Response:
        if "run" in request.match_info:
            run_of(request)
        return web.Response(body=shell, content_type="text/html", charset="utf-8")

    async def favicon(_: web.Request) -> web.Response:
        return web.Response(body=_ICON, content_type="image/svg+xml")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in assets:
            raise web.HTTPNotFound()
        return web.Response(
            body=assets[name], content_type=_STATIC[name], charset="utf-8"
        )

    async def runs(_: web.Request) -> web.Response:
        index.scan()
        return _json(
            {
                "root": str(index.root),
                "runs": [d.overview() for d in index.runs.values()],
            }
        )

    async def run_info(request: web.Request) -> web.Response:
        data = run_of(request)
        exp = data.experiment
        return _json({
            **data.overview(),
            "hypothesis": exp.get("hypothesis"),
            "conditions_detail": exp.get("conditions", []),
            "budget_detail": exp.get("budget"),
            "manifest": {k: data.manifest.get(k) for k in ("run_id", "fingerprint", "created_at", "scorer", "dataset", "git_commit", "versions")},
            "summary": data.quick_summary(),
            "status_detail": data.status,
        })  # fmt: skip

    async def analysis(request: web.Request) -> web.Response:
        data = run_of(request)
        if data.n == 0:
            config = _config(data)
            return _json({"version": data.version, "records": 0, "conditions": [], "comparisons": [], "frontier": [],
                          "frontier_latency": [], "methods": "", "config": {"alpha": config.alpha, "correction": config.correction,
                                                                            "confidence_level": config.confidence_level}})  # fmt: skip
        return _json(await analyses.get(data))

    async def samples(request: web.Request) -> web.Response:
        data = run_of(request)
        query = Query(request.query)
        order = data.order(query)
        page = order[query.offset : query.offset + query.limit].tolist()
        return _json({"total": int(order.size), "offset": query.offset, "version": data.version, "rows": data.rows(page)})  # fmt: skip

    async def facets(request: web.Request) -> web.Response:
        return _json(run_of(request).facets())

    async def item(request: web.Request) -> web.Response:
        data = run_of(request)
        name = request.query.get("item", "")
        if data.items.get(name) is not None and data._items is None:
            await asyncio.to_thread(data.item_details)
        found = data.item_view(name)
        if found is None:
            raise web.HTTPNotFound(text="no such item in this run")
        return _json(found)

    async def sandbox(request: web.Request) -> web.Response:
        # runs code: a custom header makes a cross-site form unable to send it (CORS preflight)
        if request.headers.get("X-Crucible-View") != "1":
            raise web.HTTPForbidden(text="send the X-Crucible-View: 1 header")
        data = run_of(request)
        found = await asyncio.to_thread(
            data.sandbox, _int(request.query.get("index"), -1)
        )
        if found is None:
            raise web.HTTPNotFound(
                text="no code task with this index (only tasks scored by running code)"
            )
        return _json(found)

    async def disagreements(request: web.Request) -> web.Response:
        data = run_of(request)
        q = request.query
        return _json(data.disagreements(q.get("a") or None, q.get("b") or None, q.get("direction", ""),
                                        _int(q.get("offset"), 0), min(500, _int(q.get("limit"), 100))))  # fmt: skip

    async def latency(request: web.Request) -> web.Response:
        data = run_of(request)
        return _json({**data.latency(), "hedges": await asyncio.to_thread(data.hedges)})

    async def events_(request: web.Request) -> web.Response:
        data = run_of(request)
        q = request.query
        found = await asyncio.to_thread(data.events, q.get("name", ""), q.get("q", ""),
                                        _int(q.get("offset"), 0), min(1000, _int(q.get("limit"), 200)))  # fmt: skip
        return _json(found)

    async def traces(request: web.Request) -> web.Response:
        data = run_of(request)
        return _json({"total": len(data.traced), "rows": data.traces()})

    async def trace_page(request: web.Request) -> web.Response:
        data = run_of(request)
        found = await asyncio.to_thread(
            data.trace_source, _int(request.query.get("index"), -1)
        )
        if found is None:
            raise web.HTTPNotFound(text="no trace on this task")
        return _trace_html(found, frame_ancestors)

    async def stream(request: web.Request) -> web.StreamResponse:
        run_id = request.match_info.get("run")
        data = run_of(request) if run_id is not None else None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})  # fmt: skip
        _with_headers(response, csp)
        await response.prepare(request)
        me = asyncio.current_task()
        if me is not None:
            streams.add(me)
        sent: Any = (
            None  # what the client has: a run's data version, or the hub's generation
        )
        try:
            while True:
                generation = hub.generation
                if data is not None and data.version != sent:
                    sent = data.version
                    payload = {
                        "progress": data.progress(),
                        "summary": data.quick_summary(),
                        "sent": time.time(),
                    }
                    await response.write(
                        b"event: progress\ndata: " + orjson.dumps(payload) + b"\n\n"
                    )
                elif data is None and generation != sent:
                    sent = generation
                    payload = {
                        "runs": [d.overview() for d in index.runs.values()],
                        "sent": time.time(),
                    }
                    await response.write(
                        b"event: runs\ndata: " + orjson.dumps(payload) + b"\n\n"
                    )
                else:
                    await response.write(b": keep-alive\n\n")
                await hub.wait(generation)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if me is not None:
                streams.discard(me)
        return response  # fmt: skip

    async def end_streams(_: web.Application) -> None:
        for task in list(streams):
            task.cancel()

    app = web.Application(middlewares=[guard])
    app[INDEX] = index
    app.on_startup.append(hub.start)
    app.on_shutdown.append(end_streams)
    app.on_cleanup.append(hub.stop)
    app.add_routes([
        web.get("/", page),
        web.get("/static/{name}", asset),
        web.get("/favicon.ico", favicon),
        web.get("/api/runs", runs),
        web.get("/api/stream", stream),
        web.get(r"/api/stream/{run:.+}", stream),
        web.get(r"/api/run/{run:.+}", run_info),
        web.get(r"/api/analysis/{run:.+}", analysis),
        web.get(r"/api/samples/{run:.+}", samples),
        web.get(r"/api/facets/{run:.+}", facets),
        web.get(r"/api/item/{run:.+}", item),
        web.get(r"/api/disagreements/{run:.+}", disagreements),
        web.get(r"/api/latency/{run:.+}", latency),
        web.get(r"/api/events/{run:.+}", events_),
        web.get(r"/api/traces/{run:.+}", traces),
        web.post(r"/api/sandbox/{run:.+}", sandbox),
        web.get(r"/trace/{run:.+}", trace_page),
        *(web.get(rf"/{name}/{{run:.+}}", page) for name in PAGES),
    ])  # fmt: skip
    for extend in extensions:
        extend(app)
    return app


def trace_response(html_text: str, frame_ancestors: str = "'self'") -> web.Response:
    """A crucible-trace viewer page, with a CSP allowing its one inline script (by hash) only."""
    found = _SCRIPT_HASH.search(html_text)
    script = f"'{found.group(1)}'" if found else "'none'"
    policy = (
        f"default-src 'none'; script-src {script}; style-src 'unsafe-inline'; img-src data:; "
        f"base-uri 'none'; form-action 'none'; frame-ancestors 'self' {frame_ancestors}"
    )
    response = web.Response(text=html_text, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = policy
    return response


def _trace_html(found: tuple[str, Any], frame_ancestors: str) -> web.Response:
    """The trace viewer of one task: its `metadata.trace` chain, or its answer's tags parsed."""
    from crucible_core._optional import import_optional

    import_optional("crucible_trace", extra="view", distribution="crucible-harness")
    import crucible_trace as ct

    kind, value = found
    try:
        source: Any = (
            ct.from_json(orjson.dumps(value).decode())
            if kind == "chain"
            else ct.parse_llm_output(value, "task trace")
        )
    except ct.TraceError as err:
        raise web.HTTPUnprocessableEntity(
            text=f"the task's trace cannot be read: {err}"
        ) from None
    return trace_response(ct.to_html(source), frame_ancestors)  # fmt: skip


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(value)) if value is not None else default
    except ValueError:
        return default


_R = TypeVar("_R", bound=web.StreamResponse)


def _with_headers(response: _R, csp: str) -> _R:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", csp)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    headers.setdefault("Cache-Control", "no-store")
    return response
