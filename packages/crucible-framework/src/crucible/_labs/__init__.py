"""`crucible lab`: four interactive labs on the viewer's server (ensemble, hedging, A/B, traces).

The pages are served next to the run viewer's, behind the same guards (token off loopback, host
check, strict Content-Security-Policy); the computations are in `_compute` and run off the event
loop, cached per setting.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson

from crucible._labs import _compute as labs

__all__ = ("LABS", "extension")

LABS = ("ensemble", "hedging", "compare", "trace")
_STATIC = {"labs.js": "text/javascript", "labs.css": "text/css"}


class _BadParameter(ValueError):
    pass


def _number(
    q: Mapping[str, str], name: str, default: float, lo: float, hi: float
) -> float:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _BadParameter(f"`{name}` must be a number, got {raw!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise _BadParameter(f"`{name}` must be between {lo:g} and {hi:g}, got {raw!r}")
    return value


def _whole(q: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    value = _number(q, name, default, lo, hi)
    if value != int(value):
        raise _BadParameter(f"`{name}` must be a whole number, got {q.get(name)!r}")
    return int(value)


def _choice(q: Mapping[str, str], name: str, options: tuple[str, ...]) -> str:
    value = q.get(name) or options[0]
    if value not in options:
        raise _BadParameter(f"`{name}` must be one of {list(options)}, got {value!r}")
    return value


def _upto(q: Mapping[str, str], total: int) -> int:
    return _whole(q, "upto", total, 0, total)


def extension(*, root: Path, datasets: Path | None = None) -> Callable[[Any], None]:
    """The labs as a viewer extension (`crucible_harness.view(..., extensions=[...])`).

    Args:
        root: the runs root the viewer serves; the A/B lab writes its report runs under `root/labs`.
        datasets: a directory holding `mmlu/` and `gsm8k/` in their original layout (default: the
            dataset cache, filled from the hub on first use).
    """

    def install(app: Any) -> None:
        from aiohttp import web

        from crucible_harness._view._server import INDEX, trace_response

        static = files("crucible._labs") / "static"
        shell = (static / "labs.html").read_bytes()
        assets = {name: (static / name).read_bytes() for name in _STATIC}

        ensemble = functools.lru_cache(maxsize=16)(
            lambda strategy, rho, n, seed: labs.ensemble_lab(strategy=strategy, rho=rho, n=n, seed=seed, datasets=datasets))  # fmt: skip
        compare = functools.lru_cache(maxsize=16)(
            lambda **kw: labs.compare_lab(datasets=datasets, **kw)
        )
        trace = functools.lru_cache(maxsize=32)(
            lambda problem, seed: labs.trace_lab(problem=problem, seed=seed, datasets=datasets))  # fmt: skip
        hedging = functools.lru_cache(maxsize=16)(
            lambda samples, **kw: labs.hedging_lab(samples=None if samples is None else list(samples), **kw))  # fmt: skip

        def reply(value: Any) -> web.Response:
            return web.Response(body=orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=str),
                                content_type="application/json")  # fmt: skip

        def guarded(
            fn: Callable[[web.Request], Any],
        ) -> Callable[[web.Request], Any]:
            async def handler(request: web.Request) -> web.Response:
                try:
                    return await fn(request)  # type: ignore[no-any-return]
                except _BadParameter as err:
                    raise web.HTTPBadRequest(text=str(err)) from None

            return handler

        async def page(_: web.Request) -> web.Response:
            return web.Response(body=shell, content_type="text/html", charset="utf-8")

        async def asset(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            if name not in assets:
                raise web.HTTPNotFound()
            return web.Response(
                body=assets[name], content_type=_STATIC[name], charset="utf-8"
            )

        async def prefix(lab: Any, q: Mapping[str, str]) -> web.Response:
            """The analysis of the first `upto` items, with the items from `since` on."""
            upto = _upto(q, len(lab.items))
            since = _whole(q, "since", 0, 0, upto)
            summary = await asyncio.to_thread(lab.summary, upto)
            return reply(
                summary | {"items": list(lab.items[since:upto]), "since": since}
            )

        async def ensemble_api(request: web.Request) -> web.Response:
            q = request.query
            key = (_choice(q, "strategy", labs.STRATEGIES), _number(q, "rho", 0.3, 0, 1), _whole(q, "n", 200, 10, 1000),
                   _whole(q, "seed", 0, 0, 2**31))  # fmt: skip
            return await prefix(await asyncio.to_thread(ensemble, *key), q)

        async def hedging_api(request: web.Request) -> web.Response:
            q = request.query
            samples: tuple[float, ...] | None = None
            if q.get("run"):
                data = request.app[INDEX].get(q["run"])
                if data is None:
                    raise web.HTTPNotFound(text="no such run under the viewer's root")
                values = data.numeric["latency"].values[data.ok_mask()]
                samples = tuple(float(v) for v in values if math.isfinite(v) and v >= 0)
                if not samples:
                    raise _BadParameter("that run has no recorded latencies yet")
            elif q.get("samples"):
                try:
                    samples = tuple(
                        float(v) / 1000 for v in q["samples"].replace(",", " ").split()
                    )
                except ValueError:
                    raise _BadParameter(
                        "`samples` must be latencies in milliseconds, separated by spaces or commas"
                    ) from None
                if not samples or not all(math.isfinite(v) and v >= 0 for v in samples):
                    raise _BadParameter("`samples` must be finite latencies >= 0 ms")
            policy = _choice(q, "policy", ("percentile", "fixed", "adaptive", "none"))
            bounds = {
                "fixed": (0.001, 60.0),
                "percentile": (1.0, 99.9),
                "adaptive": (0.001, 0.9),
                "none": (0.0, 1e9),
            }[policy]
            value = None if not q.get("value") else _number(q, "value", 0, *bounds)
            budget = (
                None if not q.get("budget") else _number(q, "budget", 0.1, 0.001, 10)
            )
            p50 = _number(q, "p50", 0.5, 0.001, 60)
            p95 = _number(q, "p95", 2.0, p50, 120)
            p99 = _number(q, "p99", 5.0, p95, 600)
            options = {"policy": policy, "value": value, "budget": budget, "p50": p50, "p95": p95, "p99": p99,
                       "tail": _number(q, "tail", 0.1, 0, 0.9), "n": _whole(q, "n", 5000, 100, 50_000),
                       "seed": _whole(q, "seed", 0, 0, 2**31)}  # fmt: skip
            try:
                lab = await asyncio.to_thread(hedging, samples, **options)
            except (
                ValueError
            ) as err:  # the simulator's own checks (InvalidHedgingConfigError)
                raise _BadParameter(str(err)) from None
            summary = await asyncio.to_thread(lab.summary, _upto(q, len(lab.latency)))
            return reply(summary)

        def compare_settings(q: Mapping[str, str]) -> dict[str, Any]:
            return {
                "acc_a": _number(q, "acc_a", 0.87, 0.01, 0.99), "price_a": _number(q, "price_a", 0.002, 0, 10),
                "latency_a": _number(q, "latency_a", 0.8, 0.01, 60), "acc_b": _number(q, "acc_b", 0.91, 0.01, 0.99),
                "price_b": _number(q, "price_b", 0.005, 0, 10), "latency_b": _number(q, "latency_b", 0.6, 0.01, 60),
                "rho": _number(q, "rho", 0.5, 0, 1), "n": _whole(q, "n", 300, 10, 1319), "seed": _whole(q, "seed", 0, 0, 2**31),
            }  # fmt: skip

        async def compare_api(request: web.Request) -> web.Response:
            q = request.query
            return await prefix(
                await asyncio.to_thread(lambda: compare(**compare_settings(q))), q
            )

        async def compare_report(request: web.Request) -> web.Response:
            # writes files: a custom header makes a cross-site form unable to send it (CORS preflight)
            if request.headers.get("X-Crucible-Lab") != "1":
                raise web.HTTPForbidden(text="send the X-Crucible-Lab: 1 header")
            settings = compare_settings(request.query)
            lab = await asyncio.to_thread(lambda: compare(**settings))
            result = await asyncio.to_thread(_recorded, lab, root)
            await asyncio.to_thread(
                request.app[INDEX].scan, force=True
            )  # the viewer lists it at once
            return reply(result)

        async def trace_api(request: web.Request) -> web.Response:
            q = request.query
            lab = await asyncio.to_thread(
                trace,
                _whole(q, "problem", 0, 0, 100_000),
                _whole(q, "seed", 0, 0, 2**31),
            )
            parsed = await asyncio.to_thread(
                lab.parse, _upto(q, len(lab.text)), query=q.get("q", "")[:200]
            )
            return reply(parsed)

        async def trace_view(request: web.Request) -> web.Response:
            import crucible_trace as ct

            q = request.query
            lab = await asyncio.to_thread(
                trace,
                _whole(q, "problem", 0, 0, 100_000),
                _whole(q, "seed", 0, 0, 2**31),
            )
            html = await asyncio.to_thread(lambda: ct.to_html(lab.chain_result()))
            return trace_response(html)

        app.add_routes([
            web.get("/labs", page),
            *(web.get(f"/labs/{name}", page) for name in LABS),
            web.get("/lab-static/{name}", asset),
            web.get("/api/lab/ensemble", guarded(ensemble_api)),
            web.get("/api/lab/hedging", guarded(hedging_api)),
            web.get("/api/lab/compare", guarded(compare_api)),
            web.post("/api/lab/compare/report", guarded(compare_report)),
            web.get("/api/lab/trace", guarded(trace_api)),
            web.get("/lab-trace", guarded(trace_view)),
        ])  # fmt: skip

    return install


def _recorded(lab: labs.CompareLab, root: Path) -> dict[str, Any]:
    """The lab's A/B recorded under `root/labs`, with its run id in the viewer."""
    result = lab.report(root / "labs")
    result["run"] = (
        Path(result["run_dir"]).resolve().relative_to(root.resolve()).as_posix()
    )
    return result
