"""Chains as JSON (versioned), JSONL, CSV, Markdown and Mermaid, and `export` to a file."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any, Literal, TypeAlias

from crucible_core.export import CsvWriter, atomic_write
from crucible_core.render import format_value, markdown_escape
from crucible_core.serde import converter, dumps, loads
from crucible_trace._model import Chain, TraceEvent
from crucible_trace.exceptions import ChainFormatError, InvalidQueryError, TraceError

__all__ = (
    "SCHEMA",
    "SCHEMA_VERSION",
    "ExportFormat",
    "export",
    "from_json",
    "to_csv",
    "to_json",
    "to_jsonl",
    "to_markdown",
    "to_mermaid",
)

SCHEMA = "crucible-trace.chain"
"""The `schema` field of a chain's JSON document."""
SCHEMA_VERSION = 1
"""The version of the chain JSON document this package writes (and the newest it reads)."""

ExportFormat: TypeAlias = Literal["json", "jsonl", "csv", "markdown", "mermaid", "html"]
"""The formats [`export`][crucible_trace.export] writes."""

_SUFFIXES: dict[str, ExportFormat] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".html": "html",
    ".htm": "html",
}


def _document(chain: Chain) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "chain": converter.unstructure(chain),
    }


def to_json(chain: Chain) -> str:
    """The chain as a versioned JSON document, `{"schema", "version", "chain"}`.

    [`from_json`][crucible_trace.from_json] reads it back exactly.
    """
    return dumps(_document(chain)).decode()


def _find_trace_error(err: BaseException) -> TraceError | None:
    if isinstance(err, TraceError):
        return err
    for sub in getattr(err, "exceptions", ()):
        found = _find_trace_error(sub)
        if found is not None:
            return found
    return None


def from_json(data: str | bytes) -> Chain:
    """Read a chain written by [`to_json`][crucible_trace.to_json] (or a store).

    Raises:
        ChainFormatError: if the text is not JSON, not a chain document, from a newer schema
            version, or holds an event that breaks a rule (e.g. a type not registered here).
    """
    try:
        doc = loads(data)
    except ValueError as err:
        raise ChainFormatError(f"not a chain document: {err}", version=None) from err
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or "chain" not in doc:
        raise ChainFormatError(
            f"not a chain document: expected a JSON object with schema {SCHEMA!r}, a version "
            "and a chain, as `crucible_trace.to_json` writes",
            version=None,
        )
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ChainFormatError(
            f"chain document version {version!r} is not a positive integer",
            version=version,
        )
    if version > SCHEMA_VERSION:
        raise ChainFormatError(
            f"chain document version {version} was written by a newer crucible-trace (this one "
            f"reads up to {SCHEMA_VERSION}); upgrade: `pip install -U crucible-trace`",
            version=version,
        )
    try:
        return converter.structure(doc["chain"], Chain)
    except Exception as err:
        inner = _find_trace_error(err)
        detail = str(inner) if inner is not None else str(err)
        raise ChainFormatError(
            f"chain document does not hold a valid chain: {detail}", version=version
        ) from err


def _event_record(chain: Chain, index: int, event: TraceEvent) -> dict[str, Any]:
    record: dict[str, Any] = {
        "chain_id": chain.id,
        "chain_name": chain.name,
        "index": index,
    }
    record.update(converter.unstructure(event))
    return record


def to_jsonl(chain: Chain) -> str:
    """One JSON object per event and line, each with `chain_id`, `chain_name` and `index`."""
    return "".join(
        dumps(_event_record(chain, i, e)).decode() + "\n"
        for i, e in enumerate(chain.events)
    )


_CSV_COLUMNS = (
    "chain_id",
    "chain_name",
    "index",
    "id",
    "timestamp",
    "type",
    "decision",
    "alternatives",
    "reasoning",
    "confidence",
    "code_section",
    "spec_reference",
    "parent_ids",
)


def to_csv(chain: Chain, *, neutralize_formulas: bool = True) -> str:
    """One row per event; `alternatives` as a JSON list, `parent_ids` space-separated.

    An unknown confidence, code section or spec reference is an empty cell. Text a spreadsheet
    would run as a formula (`=…`, `+…`, `-…`, `@…`, a leading tab or carriage return) gets a
    leading `'` (crucible-core's `CsvWriter`); `neutralize_formulas=False` writes it as given.
    """
    out = io.StringIO()
    writer = CsvWriter(out, neutralize_formulas=neutralize_formulas)
    writer.writerow(_CSV_COLUMNS)
    for i, e in enumerate(chain.events):
        writer.writerow(
            (
                chain.id,
                chain.name,
                i,
                e.id,
                e.timestamp.isoformat(),
                e.type,
                e.decision,
                dumps(list(e.alternatives)).decode(),
                e.reasoning,
                "" if e.confidence is None else repr(e.confidence),
                e.code_section or "",
                e.spec_reference or "",
                " ".join(e.parent_ids),
            )
        )
    return out.getvalue()


def _conf(value: float | None) -> str:
    return "unknown" if value is None else format_value(value, precision=3)


def to_markdown(chain: Chain) -> str:
    """A Markdown report: a summary table, then one section per event. All text is escaped."""

    def md(text: str) -> str:
        # One line whatever the text (Unicode line separators too, not only \n and \r), and
        # braces escaped here so `{{ … }}` stays inert for template-processing Markdown tools.
        pieces = re.split(r"([{}])", " ".join(text.splitlines()))
        return "".join(
            "\\" + p if p in ("{", "}") else markdown_escape(p) for p in pieces
        )

    known = [e.confidence for e in chain.events if e.confidence is not None]
    lines = [
        f"# Reasoning chain: {md(chain.name)}",
        "",
        f"- id: `{chain.id}`",
        f"- created: {chain.created_at.isoformat()}",
        f"- events: {len(chain.events)}",
        f"- mean confidence: {_conf(sum(known) / len(known) if known else None)}",
        "",
    ]
    if chain.events:
        lines += ["| # | type | decision | confidence |", "|---|---|---|---|"]
        lines += [
            f"| {i} | {md(e.type)} | {md(e.decision)} | {_conf(e.confidence)} |"
            for i, e in enumerate(chain.events, 1)
        ]
        lines.append("")
    for i, e in enumerate(chain.events, 1):
        lines += [f"## {i}. {md(e.type)}: {md(e.decision)}", ""]
        lines.append(f"- confidence: {_conf(e.confidence)}")
        if e.reasoning:
            lines.append(f"- reasoning: {md(e.reasoning)}")
        if e.alternatives:
            lines.append("- alternatives:")
            lines += [f"    - {md(a)}" for a in e.alternatives]
        if e.code_section is not None:
            lines.append(f"- code section: {md(e.code_section)}")
        if e.spec_reference is not None:
            lines.append(f"- spec reference: {md(e.spec_reference)}")
        if e.parent_ids:
            lines.append("- follows from: " + ", ".join(f"`{p}`" for p in e.parent_ids))
        lines.append("")
    return "\n".join(lines)


_MERMAID_SAFE = frozenset(" .,:!?-_/'")


def _mermaid_text(text: str, limit: int = 60) -> str:
    """Text for a quoted Mermaid label, with no way out of its node.

    Anything but letters, digits and plain punctuation becomes an entity code (`#60;`).
    """
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return "".join(
        ch
        if (ch.isalnum() and ch.isprintable()) or ch in _MERMAID_SAFE
        else f"#{ord(ch)};"
        for ch in flat
    )


def to_mermaid(chain: Chain) -> str:
    """A Mermaid flowchart: one node per event, edges from parents (else from the previous event).

    Labels are entity-encoded, so no text in an event can break out of its node.
    """
    index = {e.id: i for i, e in enumerate(chain.events)}
    lines = ["flowchart TD"]
    for i, e in enumerate(chain.events):
        conf = (
            ""
            if e.confidence is None
            else f" ({format_value(e.confidence, precision=2)})"
        )
        lines.append(
            f'    e{i}["{_mermaid_text(e.type)}: {_mermaid_text(e.decision)}{conf}"]'
        )
    for i, e in enumerate(chain.events):
        if e.parent_ids:
            lines += [f"    e{index[p]} --> e{i}" for p in e.parent_ids]
        elif i:
            lines.append(f"    e{i - 1} --> e{i}")
    low = [
        f"e{i}"
        for i, e in enumerate(chain.events)
        if e.confidence is not None and e.confidence < 0.5
    ]
    if low:
        lines.append("    classDef low fill:#fde2e1,stroke:#c0392b")
        lines.append(f"    class {','.join(low)} low")
    return "\n".join(lines) + "\n"


def export(
    chain: Chain,
    path: str | os.PathLike[str],
    *,
    format: ExportFormat | None = None,
    neutralize_formulas: bool = True,
) -> Path:
    """Write the chain to `path` atomically, in the format its suffix names (or `format`).

    Suffixes: `.json`, `.jsonl`/`.ndjson`, `.csv`, `.md`/`.markdown`, `.mmd`/`.mermaid`,
    `.html`/`.htm` (the viewer; needs the `jinja2` extra). `neutralize_formulas` is passed to
    [`to_csv`][crucible_trace.to_csv] (CSV only).

    Returns:
        The path written.

    Raises:
        InvalidQueryError: if the format is unknown or cannot be told from the suffix.
    """
    target = Path(path)
    if format is None:
        found = _SUFFIXES.get(target.suffix.lower())
        if found is None:
            raise InvalidQueryError(
                f"cannot tell the format of {str(target)!r} from its suffix; use one of "
                f"{sorted(_SUFFIXES)} or pass format=",
                option="format",
                value=None,
            )
        format = found
    if format == "html":
        from crucible_trace._viewer import to_html

        text = to_html(chain)
    else:
        writers = {
            "json": to_json,
            "jsonl": to_jsonl,
            "csv": to_csv,
            "markdown": to_markdown,
            "mermaid": to_mermaid,
        }
        writer = writers.get(format)
        if writer is None:
            raise InvalidQueryError(
                f"format must be one of {sorted([*writers, 'html'])}, got {format!r}",
                option="format",
                value=format,
            )
        text = (
            to_csv(chain, neutralize_formulas=neutralize_formulas)
            if format == "csv"
            else writer(chain)
        )
    with atomic_write(target) as fh:
        fh.write(text)
    return target
