"""The `crucible` command line: `--version`, `versions`, `models`, `demo`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from crucible_core.exceptions import CrucibleError

__all__ = ("main",)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _version() -> str:
    from importlib.metadata import version

    return version("crucible-framework")


def _cmd_versions(_: argparse.Namespace) -> int:
    from crucible._versions import show_versions

    show_versions()
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


def _cmd_demo(args: argparse.Namespace) -> int:
    from crucible._demo import run_demo

    report = run_demo(output_dir=Path(args.output), items=args.items, seed=args.seed)
    _out(report.render())
    _out(f"\nreport written to {report.path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crucible",
        description="Reproducible, statistically rigorous experiments on LLM reliability, latency and cost.",
    )
    parser.add_argument("--version", action="version", version=f"crucible {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    versions = sub.add_parser(
        "versions", help="print versions of crucible and its dependencies"
    )
    versions.set_defaults(func=_cmd_versions)

    models = sub.add_parser(
        "models", help="list model providers, or send one prompt to a model"
    )
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION")
    listing = models_sub.add_parser("list", help="list providers and known models")
    listing.add_argument("--provider", help="only this provider")
    listing.set_defaults(func=_cmd_models_list)
    run = models_sub.add_parser("run", help="send one prompt and print the answer")
    run.add_argument(
        "model", help='a model string, e.g. "sim:gpt-4" or "openai:gpt-4o-mini"'
    )
    run.add_argument("prompt", help="the prompt text")
    run.add_argument(
        "--reference", help="the expected answer (simulated models use it)"
    )
    run.add_argument(
        "--seed", type=int, default=0, help="seed of a simulated model (default 0)"
    )
    run.set_defaults(func=_cmd_models_run)
    models.set_defaults(func=_cmd_models_list, provider=None)

    demo = sub.add_parser(
        "demo", help="run the main job on the embedded default (no key, no network)"
    )
    demo.add_argument(
        "--output",
        default="crucible-demo",
        help="directory for the report (default ./crucible-demo)",
    )
    demo.add_argument(
        "--items", type=int, default=100, help="items per model (default 100)"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    demo.set_defaults(func=_cmd_demo)
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
