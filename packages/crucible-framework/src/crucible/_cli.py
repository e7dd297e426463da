"""The `crucible` command line: run, estimate, report, status, repair, demo, view, monitor, models, versions, config."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crucible_core.exceptions import CrucibleError, ValidationError

__all__ = ("main",)

REPORT_FORMATS = ("markdown", "html", "latex", "notebook", "json", "parquet", "jsonl")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _version() -> str:
    from importlib.metadata import version

    return version("crucible-framework")


# -- experiments from files ---------------------------------------------------------------------


def load_experiment(path: str) -> Any:
    """The experiment a Python file declares.

    The file's module-level `experiment` (an `Experiment`), else its only `Experiment` instance,
    else its only class with `@condition` methods (built with `Experiment.from_class`).
    """
    from crucible_harness import Experiment

    source = Path(path)
    if not source.is_file():
        raise ValidationError(f"no experiment file at {path!r}", path=path)
    spec = importlib.util.spec_from_file_location(
        f"crucible_experiment_{source.stem}", source
    )
    if spec is None or spec.loader is None:
        raise ValidationError(f"cannot import {path!r} as Python", path=path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    found = getattr(module, "experiment", None)
    if isinstance(found, Experiment):
        return found
    instances = [v for v in vars(module).values() if isinstance(v, Experiment)]
    if len(instances) == 1:
        return instances[0]
    classes = [
        v for v in vars(module).values()
        if isinstance(v, type) and v.__module__ == module.__name__
        and any(hasattr(m, "__crucible_condition__") for m in vars(v).values())
    ]  # fmt: skip
    if len(instances) == 0 and len(classes) == 1:
        return Experiment.from_class(classes[0])
    raise ValidationError(
        f"{path!r} must define `experiment = Experiment(...)` (found {len(instances)} Experiment "
        f"instance(s) and {len(classes)} class(es) with @condition methods)",
        path=path,
    )


# A run with its answer: all tasks ran, or the sequential rule stopped it early (exit 0). Budget,
# interrupted, failed and running runs are not finished (exit 3).
_FINISHED = ("complete", "stopped")
_EXIT_STATUSES = (
    "exit 0: complete, or stopped early by its sequential rule; 3: budget, interrupted, failed "
    "or still running"
)


def _cmd_run(args: argparse.Namespace) -> int:
    from crucible_harness import estimate, run

    experiment = load_experiment(args.experiment)
    if args.ray is not None:
        from crucible_harness import RayExecutor

        experiment = experiment.with_run(executor=RayExecutor(address=args.ray))
    est = estimate(experiment)
    sys.stderr.write(est.render() + "\n")
    if not args.dry_run and not args.yes:
        if not sys.stdin.isatty():
            raise ValidationError(
                "not starting without confirmation: pass --yes (or --dry-run)"
            )
        answer = input("Run it? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            _out("not run")
            return 1
    result = run(
        experiment,
        output_dir=args.output,
        resume=args.resume,
        dry_run=args.dry_run,
        formats=tuple(args.format),
        progress=not args.quiet,
    )
    _out(result.render())
    for fmt, path in sorted(result.reports.items()):
        _out(f"  {fmt:9s} {path}")
    return 0 if result.status in _FINISHED or result.status == "dry-run" else 3


def _cmd_estimate(args: argparse.Namespace) -> int:
    from crucible_harness import estimate

    _out(estimate(load_experiment(args.experiment)).render())
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from crucible_harness import load_run

    result = load_run(args.run_dir, formats=tuple(args.format))
    _out(result.render())
    for fmt, path in sorted(result.reports.items()):
        _out(f"  {fmt:9s} {path}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from crucible_harness import status

    progress = status(args.run_dir)
    _out(progress.render())
    return 0 if progress.status in _FINISHED else 3


def _cmd_repair(args: argparse.Namespace) -> int:
    from crucible_harness import repair

    _out(repair(args.run_dir).render())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from crucible._demo import run_demo

    result = run_demo(output_dir=Path(args.output), repeats=args.repeats, sample_size=args.items,
                      seed=args.seed, progress=not args.quiet)  # fmt: skip
    _out(result.render())
    _out("")
    for fmt, path in sorted(result.reports.items()):
        _out(f"  {fmt:9s} {path}")
    _out(f"report: {result.reports.get('html', result.run_dir)}")
    return 0


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The server options `view` and `lab` share."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; any other needs a token)",
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port (default 8765; 0: any free port)"
    )
    parser.add_argument(
        "--token",
        nargs="?",
        const="",
        default=None,
        help="require this token on every request (no value: generate one); "
        "always on when --host is not loopback",
    )
    parser.add_argument("--no-browser", action="store_true", help="print the URL; do not open a browser")  # fmt: skip


def _cmd_view(args: argparse.Namespace) -> int:
    import secrets

    from crucible._labs import extension
    from crucible_harness import view

    token = secrets.token_urlsafe(24) if args.token == "" else args.token
    labs = getattr(args, "labs", False)
    root = Path(args.path)
    if labs:
        root.mkdir(parents=True, exist_ok=True)
    datasets = None if getattr(args, "datasets", None) is None else Path(args.datasets)
    viewer = view(root, host=args.host, port=args.port, token=token, start="/labs" if labs else None,
                  extensions=[extension(root=root, datasets=datasets)] if root.is_dir() else ())  # fmt: skip
    _out(f"crucible {'lab' if labs else 'view'}: serving {viewer.root} at {viewer.url}")
    if viewer.token is not None and not args.token:
        _out("  (a token was generated: anyone with this URL can read the runs)")
    sys.stdout.flush()
    if not args.no_browser:
        viewer.open()
    viewer.wait()
    return 0


# -- models and versions -------------------------------------------------------------------------


def _baseline(args: argparse.Namespace, store: Any) -> Any:
    """`--baseline 30d` (the last 30 days of the store) or `--baseline <experiment id>`."""
    import datetime as dt
    import re

    import crucible_telemetry as ct

    period = re.fullmatch(r"(\d+)d", args.baseline)
    if period is None:
        return ct.Baseline.from_experiment(args.baseline, store=store)
    now = dt.datetime.now(dt.UTC)
    return ct.Baseline.from_store(
        store,
        since=now - dt.timedelta(days=int(period.group(1))),
        until=now,
        experiment=args.experiment,
        tag=args.tag,
    )


def _cmd_monitor(args: argparse.Namespace) -> int:
    import datetime as dt
    import time

    import crucible_telemetry as ct

    store = ct.open_store(args.store)
    try:
        baseline = _baseline(args, store)
        _out(baseline.render())
        sinks: list[Any] = [lambda alert: _out(alert.render())]
        if args.webhook:
            sinks.append(ct.WebhookSink(args.webhook))
        monitor = ct.Monitor(baseline, metrics=args.metrics, method=args.method, arl0=args.arl0, sinks=sinks)  # fmt: skip
        start = baseline.end + dt.timedelta(microseconds=1) if baseline.end else None
        while True:
            monitor.poll(store, experiment=args.experiment, tag=args.tag, since=start)
            if args.once:
                break
            time.sleep(args.interval)
    finally:
        store.close()
    if monitor.sink_errors:
        sys.stderr.write(f"crucible: {len(monitor.sink_errors)} alert(s) not delivered: {monitor.sink_errors[0]}\n")  # fmt: skip
    return 3 if monitor.alerts else 0


def _cmd_versions(_: argparse.Namespace) -> int:
    from crucible._versions import show_versions

    show_versions()
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from crucible_core.serde import dumps
    from crucible_core.settings import load_settings

    settings = load_settings(args.project)
    if args.json:
        payload = {
            "file": None if settings.file is None else str(settings.file),
            "settings": {
                k: {"value": v.value, "source": v.source}
                for k, v in settings.entries.items()
            },
        }
        _out(dumps(payload).decode())
    else:
        _out(settings.render())
    return 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    from crucible_core.models import providers

    for info in providers():
        if args.provider and info.name != args.provider:
            continue
        state = (
            "ready"
            if info.available
            else f'needs `pip install "crucible-core[{info.extra}]"`'
        )
        _out(f"{info.name}: {info.description} ({state})")
        for model in info.models:
            _out(f"  {info.name}:{model}")
    return 0


async def _ask(spec: str, prompt: str, reference: str | None, seed: int) -> int:
    from crucible_core.models import Request, build_model

    options = {"seed": seed} if spec.startswith("sim:") else {}
    model = build_model(spec, **options)
    try:
        done = await model.complete(Request(prompt=prompt, reference=reference))
    finally:
        await model.aclose()
    _out(done.text)
    cost = "unknown" if done.cost is None else f"${done.cost:.6f}"
    sys.stderr.write(
        f"[{done.model} via {done.provider}: {done.latency * 1000:.0f} ms, "
        f"{done.usage.input_tokens}+{done.usage.output_tokens} tokens, {cost}]\n"
    )
    return 0


def _cmd_models_run(args: argparse.Namespace) -> int:
    return asyncio.run(_ask(args.model, args.prompt, args.reference, args.seed))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crucible",
        description="Reproducible, statistically rigorous experiments on LLM reliability, latency and cost.",
    )
    parser.add_argument("--version", action="version", version=f"crucible {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def formats(p: argparse.ArgumentParser, default: Sequence[str]) -> None:
        p.add_argument(
            "--format",
            nargs="+",
            choices=REPORT_FORMATS,
            default=list(default),
            help="report formats",
        )

    run = sub.add_parser(
        "run",
        help="run an experiment declared in a Python file",
        description=f"Run an experiment declared in a Python file ({_EXIT_STATUSES}; a "
        "dry run exits 0; 1: an error).",
    )
    run.add_argument(
        "experiment", help="a .py file defining `experiment = Experiment(...)`"
    )
    run.add_argument(
        "--output",
        default=None,
        help="directory for run directories (default: the results_dir setting, ./runs built in)",
    )
    run.add_argument(
        "--resume", metavar="RUN_DIR", help="run only the tasks missing from RUN_DIR"
    )
    run.add_argument(
        "--dry-run", action="store_true", help="validate and estimate; send nothing"
    )
    run.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        metavar="ADDRESS",
        help="run the tasks on a Ray cluster (default address: auto, the local `ray start` "
        "cluster or RAY_ADDRESS; or ray://host:10001); needs crucible-harness[ray]",
    )
    run.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    run.add_argument("--quiet", action="store_true", help="no progress line")
    formats(run, ("markdown", "html", "json"))
    run.set_defaults(func=_cmd_run)

    est = sub.add_parser("estimate", help="estimate an experiment's cost and time")
    est.add_argument(
        "experiment", help="a .py file defining `experiment = Experiment(...)`"
    )
    est.set_defaults(func=_cmd_estimate)

    report = sub.add_parser("report", help="analyse a run directory and write reports")
    report.add_argument("run_dir", help="the run directory")
    formats(report, ("markdown", "html", "json"))
    report.set_defaults(func=_cmd_report)

    progress = sub.add_parser(
        "status",
        help=f"how far a run directory got ({_EXIT_STATUSES})",
        description=f"How far a run directory got ({_EXIT_STATUSES}; 1: an error).",
    )
    progress.add_argument("run_dir", help="the run directory")
    progress.set_defaults(func=_cmd_status)

    fix = sub.add_parser(
        "repair",
        help="write a clean task log for a run directory (the original is kept beside it)",
    )
    fix.add_argument("run_dir", help="the run directory")
    fix.set_defaults(func=_cmd_repair)

    demo = sub.add_parser(
        "demo", help="run the main job on the embedded default (no key, no network)"
    )
    demo.add_argument(
        "--output",
        default="crucible-demo",
        help="directory for the run and its reports (default ./crucible-demo)",
    )
    demo.add_argument(
        "--items",
        type=int,
        default=None,
        help="sample this many HumanEval problems (default: all 164)",
    )
    demo.add_argument(
        "--repeats", type=int, default=3, help="repeats per item (default 3)"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    demo.add_argument("--quiet", action="store_true", help="no progress line")
    demo.set_defaults(func=_cmd_demo)

    viewer = sub.add_parser(
        "view", help="explore run directories in the browser, live while they run"
    )
    viewer.add_argument(
        "path",
        nargs="?",
        default="runs",
        help="a run directory or a directory of runs (default ./runs)",
    )
    _serve_arguments(viewer)
    viewer.set_defaults(func=_cmd_view)

    lab = sub.add_parser(
        "lab",
        help="the interactive labs (ensemble, hedging, A/B statistics, traces) in the browser",
    )
    lab.add_argument(
        "path",
        nargs="?",
        default="runs",
        help="the runs root (default ./runs; created if missing)",
    )
    lab.add_argument(
        "--datasets",
        default=None,
        help="a directory holding mmlu/ and gsm8k/ in their original layout (default: the dataset cache)",
    )
    _serve_arguments(lab)
    lab.set_defaults(func=_cmd_view, labs=True)

    models = sub.add_parser(
        "models", help="list model providers, or send one prompt to a model"
    )
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION")
    listing = models_sub.add_parser("list", help="list providers and known models")
    listing.add_argument("--provider", help="only this provider")
    listing.set_defaults(func=_cmd_models_list)
    ask = models_sub.add_parser("run", help="send one prompt and print the answer")
    ask.add_argument(
        "model", help='a model string, e.g. "sim:gpt-4" or "openai:gpt-4o-mini"'
    )
    ask.add_argument("prompt", help="the prompt text")
    ask.add_argument(
        "--reference", help="the expected answer (simulated models use it)"
    )
    ask.add_argument(
        "--seed", type=int, default=0, help="seed of a simulated model (default 0)"
    )
    ask.set_defaults(func=_cmd_models_run)
    models.set_defaults(func=_cmd_models_list, provider=None)

    mon = sub.add_parser(
        "monitor",
        help="watch a telemetry store for degradation against a baseline and alert "
        "(exit status 3 when an alert was raised)",
    )
    mon.add_argument("--store", required=True, help="telemetry store URL or path")
    mon.add_argument(
        "--baseline",
        required=True,
        help="'30d' (the last 30 days of the store) or an experiment id",
    )
    mon.add_argument("--experiment", default=None, help="only experiments of this name")
    mon.add_argument("--tag", default=None, help="only experiments with this tag")
    mon.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        choices=("success_rate", "latency_p95", "accuracy", "cost_per_request"),
        help="metrics to watch (default: all the baseline has)",
    )
    mon.add_argument(
        "--method",
        default="confidence_sequence",
        choices=("confidence_sequence", "cusum", "page_hinkley"),
    )
    mon.add_argument(
        "--arl0",
        type=float,
        default=10_000,
        help="mean requests between false alarms (default 10000)",
    )
    mon.add_argument(
        "--webhook", default=None, help="POST alerts (Slack-compatible JSON) here"
    )
    mon.add_argument(
        "--once",
        action="store_true",
        help="check everything since the baseline once and exit (for cron)",
    )
    mon.add_argument(
        "--interval",
        type=float,
        default=60.0,
        help="seconds between polls (default 60)",
    )
    mon.set_defaults(func=_cmd_monitor)

    versions = sub.add_parser(
        "versions", help="print versions of crucible and its dependencies"
    )
    versions.set_defaults(func=_cmd_versions)

    config = sub.add_parser(
        "config",
        help="print the effective settings and where each came from "
        "(code > environment > crucible.toml / [tool.crucible] > built-in)",
    )
    config.add_argument(
        "--project",
        default=None,
        help="look for the project file from here (default: .)",
    )
    config.add_argument("--json", action="store_true", help="print JSON")
    config.set_defaults(func=_cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except CrucibleError as err:
        sys.stderr.write(f"crucible: error: {err}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("crucible: interrupted\n")
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        return 0
