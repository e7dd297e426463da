"""Reading `<event>` tags out of model output, in one piece or as it streams, and writing them.

The scanner is linear in the input and never raises on text: whatever it cannot use becomes a
[`ParseWarning`][crucible_trace.ParseWarning] on the result. One scanner serves both
[`parse_llm_output`][crucible_trace.parse_llm_output] (feed everything, then close) and
[`StreamParser`][crucible_trace.StreamParser], so both give the same events and warnings for the same
text however it is split into chunks.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import html
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from crucible_core.ids import is_id, new_id
from crucible_core.render import RenderMixin, View
from crucible_trace._model import Chain, TraceEvent, new_chain
from crucible_trace._ops import _emit_created
from crucible_trace._types import event_types, is_event_type
from crucible_trace.exceptions import InvalidEventError, TraceError, TraceParseError

__all__ = (
    "ParseResult",
    "ParseWarning",
    "StreamParser",
    "build_causal_prompt",
    "extract_code",
    "parse_llm_output",
    "to_tags",
)

_FLAGS = re.IGNORECASE | re.ASCII  # ASCII: no Unicode case folding (ſ is not s)
_EVENT_START = re.compile(r"<event(?=[\s/>])", _FLAGS)
_BOUNDARY = re.compile(r"<!\[CDATA\[|</event\s*>|<event(?=[\s/>])", _FLAGS)
_ATTR = re.compile(
    r"""([^\s=/"'<>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""", re.ASCII
)
_TAG = re.compile(
    r"<!\[CDATA\[|<([A-Za-z_][\w.:-]{0,63})((?:\s[^<>]*?)?)(/?)>", re.ASCII
)
_CHILDREN = (
    "decision",
    "alternatives",
    "reasoning",
    "confidence",
    "code_section",
    "spec_reference",
)
_KNOWN_OPEN = re.compile(
    r"<!\[CDATA\[|<(?:" + "|".join(_CHILDREN) + r")(?=[\s/>])", _FLAGS
)
_ALTERNATIVE_OPEN = re.compile(r"<!\[CDATA\[|<alternative(?:\s[^<>]*)?>", _FLAGS)
_CDATA_OPEN = "<![CDATA["
_CDATA_CLOSE = "]]>"
_MAX_OPEN_TAG = 4096
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+", re.ASCII)


@functools.lru_cache(maxsize=64)
def _close_re(name: str) -> re.Pattern[str]:
    return re.compile(r"<!\[CDATA\[|</" + re.escape(name) + r"\s*>", _FLAGS)


@attrs.define(frozen=True, kw_only=True)
class ParseWarning:
    """Something in the model output the parser could not use, and where it is."""

    message: str
    """What was wrong and what the parser did about it."""
    offset: int
    """Character offset in the whole output (0-based)."""
    line: int
    """Line number (1-based)."""
    column: int
    """Column (1-based)."""
    snippet: str
    """Up to 60 characters of the output from `offset`."""

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


@attrs.define(frozen=True, kw_only=True)
class ParseResult(RenderMixin):
    """The chain read from model output and the warnings about what could not be read."""

    chain: Chain
    """The events found, in order."""
    warnings: tuple[ParseWarning, ...] = ()
    """One entry per problem; empty when the output was clean."""

    @property
    def ok(self) -> bool:
        """Whether the output parsed without any warning."""
        return not self.warnings

    def _view(self) -> View:
        view = self.chain._view()
        return attrs.evolve(
            view,
            title=f"Parsed {view.title}",
            facts=(*view.facts, ("warnings", len(self.warnings))),
            notes=tuple(str(w) for w in self.warnings[:20])
            + (("…",) if len(self.warnings) > 20 else ()),
        )


@attrs.define
class _Child:
    raw: str
    offset: int


@attrs.define
class _Span:
    start: int  # absolute offset of `<event`
    end: int  # absolute offset just after what belongs to the event


class _Scanner:
    """Incremental scanner; `feed` text, then `finish`. Holds only the unfinished tail."""

    def __init__(self, chain_id: str, *, emit: bool = True) -> None:
        self.chain_id = chain_id
        self.emit = emit
        self.buf = ""
        self.base = 0  # absolute offset of buf[0]
        self.pos = 0  # index into buf where scanning resumes
        self.newlines: list[int] = []
        self.events: list[TraceEvent] = []
        self.ids: set[str] = set()
        self.warnings: list[ParseWarning] = []
        self.spans: list[_Span] = []
        # state of the event being read
        self.block: int | None = None  # buf index of `<event`
        self.body: int | None = None  # buf index where its body starts
        self.scan: int = 0  # buf index where the body-end search resumes
        self.cdata: int | None = None  # buf index of an open CDATA section in the body
        self.attrs: str = ""
        self.limit = 0  # buf index up to which warnings may quote text

    # -- input -------------------------------------------------------------------------------
    def feed(self, chunk: str, *, final: bool) -> list[TraceEvent]:
        start = self.base + len(self.buf)
        i = chunk.find("\n")
        while i != -1:
            self.newlines.append(start + i)
            i = chunk.find("\n", i + 1)
        self.buf += chunk
        before = len(self.events)
        self._run(final=final)
        self._trim()
        return self.events[before:]

    def _trim(self) -> None:
        keep = self.pos if self.block is None else self.block
        if keep > 0:
            self.buf = self.buf[keep:]
            self.base += keep
            self.pos -= keep
            if self.block is not None:
                self.block -= keep
            if self.body is not None:
                self.body -= keep
                self.scan -= keep
            if self.cdata is not None:
                self.cdata -= keep

    # -- warnings ----------------------------------------------------------------------------
    def warn(self, index: int, message: str) -> None:
        offset = self.base + index
        line = bisect.bisect_left(self.newlines, offset)
        column = offset - (self.newlines[line - 1] + 1 if line else 0) + 1
        # the snippet never reaches past the text that decided the warning, so it is the same
        # however the output was split into chunks
        snippet = self.buf[index : min(index + 60, self.limit)]
        self.warnings.append(
            ParseWarning(
                message=message,
                offset=offset,
                line=line + 1,
                column=column,
                snippet=snippet,
            )
        )

    # -- the state machine -------------------------------------------------------------------
    def _run(self, *, final: bool) -> None:
        buf = self.buf
        while True:
            if self.block is None:
                m = _EVENT_START.search(buf, self.pos)
                if m is None:
                    if final:
                        self.pos = len(buf)
                    else:
                        lt = buf.rfind("<", max(self.pos, len(buf) - 6))
                        self.pos = lt if lt != -1 else len(buf)
                    return
                self.block = m.start()
                self.body = None
            if self.body is None:
                if not self._open_tag(final=final):
                    return
                continue
            if not self._body_end(final=final):
                return

    def _open_tag(self, *, final: bool) -> bool:
        """Read the opening tag at self.block; False when more input is needed."""
        buf = self.buf
        assert self.block is not None
        start = self.block
        i = start + 6
        limit = min(len(buf), start + _MAX_OPEN_TAG)
        quote = ""
        while i < limit:
            ch = buf[i]
            self.limit = i + 1
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == ">":
                break
            elif ch == "<":
                i = -1
                break
            i += 1
        else:
            if not final and limit == len(buf) and limit < start + _MAX_OPEN_TAG:
                return False  # the tag may still be completed
            self.limit = limit
            i = -1
        if i == -1:
            self.warn(
                start,
                "malformed <event> opening tag (no closing `>`, or a `<` or an unbalanced quote "
                "inside it); skipped it",
            )
            self.block = None
            self.pos = start + 1
            return True
        tag = buf[start + 6 : i]
        self.limit = i + 1
        if tag.rstrip().endswith("/"):
            self.warn(start, "empty <event/> tag has no decision; skipped it")
            self.spans.append(_Span(start=self.base + start, end=self.base + i + 1))
            self.block = None
            self.pos = i + 1
            return True
        self.attrs = tag
        self.body = self.scan = i + 1
        self.cdata = None
        return True

    def _body_end(self, *, final: bool) -> bool:
        """Find where the current event's body ends; False when more input is needed."""
        buf = self.buf
        assert self.block is not None
        assert self.body is not None
        while True:
            if self.cdata is not None:
                close = buf.find(_CDATA_CLOSE, self.scan)
                if close == -1:
                    if not final:
                        self.scan = max(self.cdata + len(_CDATA_OPEN), len(buf) - 2)
                        return False
                    self.limit = len(buf)
                    self.warn(self.cdata, "CDATA section is never closed with `]]>`")
                    self._finish_block(len(buf), len(buf), closed=False)
                    return True
                self.cdata = None
                self.scan = close + 3
                continue
            m = _BOUNDARY.search(buf, self.scan)
            if m is None:
                if not final:
                    lt = buf.rfind("<", self.scan)
                    self.scan = lt if lt != -1 else len(buf)
                    return False
                self._finish_block(len(buf), len(buf), closed=False)
                return True
            token = m.group(0)
            if token.startswith("<!"):
                self.cdata = m.start()
                self.scan = m.end()
                continue
            if token.startswith("</"):
                self._finish_block(m.start(), m.end(), closed=True)
                return True
            self._finish_block(m.start(), m.start(), closed=False)
            return True

    def _finish_block(self, body_end: int, next_pos: int, *, closed: bool) -> None:
        assert self.block is not None
        assert self.body is not None
        start, body = self.block, self.body
        self.limit = next_pos if closed else body_end
        if not closed:
            self.warn(
                start,
                "<event> is not closed with </event> before "
                + (
                    "the next <event>"
                    if body_end < len(self.buf)
                    else "the end of the output"
                )
                + "; read it up to there",
            )
        last = self._event(start, self.attrs, body, body_end)
        end = next_pos if closed else last
        self.spans.append(_Span(start=self.base + start, end=self.base + end))
        self.block = self.body = None
        self.pos = next_pos

    # -- one event ---------------------------------------------------------------------------
    def _event(self, start: int, attr_text: str, body: int, body_end: int) -> int:
        """Build the event of one block; return the buf index where its last child ends."""
        attributes = self._attributes(start, attr_text)
        children, last = self._children(body, body_end)
        problems: list[str] = []
        type_ = attributes.get("type")
        decision = children.get("decision")
        if type_ is None:
            problems.append("has no type attribute")
        elif not is_event_type(type_):
            problems.append(
                f"has unknown type {type_!r} (register it with `register_event_type`)"
            )
        decision_text = self._text(decision) if decision is not None else ""
        if not decision_text:
            problems.append(
                "has no <decision>" if decision is None else "has an empty <decision>"
            )
        if problems:
            self.warn(start, "<event> " + " and ".join(problems) + "; skipped it")
            return last
        assert type_ is not None
        reasoning = children.get("reasoning")
        if reasoning is None:
            self.warn(start, "<event> has no <reasoning>; left it empty")
        confidence = self._confidence(start, children.get("confidence"))
        alternatives = self._alternatives(children.get("alternatives"))
        event_id = attributes.get("id")
        if event_id is not None and (not is_id(event_id) or event_id in self.ids):
            self.warn(
                start,
                f"<event> id {event_id!r} is not a crucible id or is used twice; gave it a new id",
            )
            event_id = None
        parents: list[str] = []
        for parent in re.split(r"[\s,]+", attributes.get("parents", "").strip()):
            if not parent:
                continue
            if parent in self.ids and parent not in parents and parent != event_id:
                parents.append(parent)
            else:
                self.warn(
                    start,
                    f"<event> parent {parent!r} is not an earlier event of this output; dropped it",
                )
        timestamp = self._timestamp(start, attributes.get("timestamp"))
        try:
            event = TraceEvent(
                id=event_id if event_id is not None else new_id("evt"),
                timestamp=timestamp,
                type=type_,
                decision=decision_text,
                alternatives=alternatives,
                reasoning=self._text(reasoning) if reasoning is not None else "",
                confidence=confidence,
                code_section=self._optional(children.get("code_section")),
                spec_reference=self._optional(children.get("spec_reference")),
                parent_ids=tuple(parents),
            )
        except (
            InvalidEventError
        ) as err:  # pragma: no cover - every rule is checked above
            self.warn(start, f"<event> is invalid: {err}; skipped it")
            return last
        self.events.append(event)
        self.ids.add(event.id)
        if self.emit:
            _emit_created(self.chain_id, event)
        return last

    def _attributes(self, start: int, text: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for m in _ATTR.finditer(text):
            name = m.group(1).lower()
            value = next((g for g in m.group(2, 3, 4) if g is not None), None)
            if name not in ("type", "id", "parents", "timestamp"):
                self.warn(
                    start, f"<event> attribute {m.group(1)!r} is not known; ignored it"
                )
                continue
            if value is None:
                self.warn(start, f"<event> attribute {name!r} has no value; ignored it")
                continue
            if name in out:
                self.warn(
                    start, f"<event> attribute {name!r} is given twice; kept the first"
                )
                continue
            value = html.unescape(value).strip()
            out[name] = value.lower() if name == "type" else value
        return out

    def _children(self, body: int, body_end: int) -> tuple[dict[str, _Child], int]:
        buf = self.buf
        found: dict[str, _Child] = {}
        alternatives: list[_Child] = []
        last = body
        no_close: dict[str, int] = {}
        i = body
        while True:
            m = _TAG.search(buf, i, body_end)
            if m is None:
                break
            if m.group(0).startswith("<!"):
                close = buf.find(_CDATA_CLOSE, m.end(), body_end)
                i = body_end if close == -1 else close + 3
                continue
            name = m.group(1).lower()
            if name not in _CHILDREN and name != "alternative":
                self.warn(
                    m.start(), f"unknown tag <{m.group(1)}> inside <event>; ignored it"
                )
                i = m.end()
                continue
            content_start = m.end()
            if m.group(3):  # <tag/>
                content_end = after = m.end()
            else:
                close_m = None
                if no_close.get(name, body_end + 1) > content_start:
                    close_m = self._find_close(name, content_start, body_end)
                    if close_m is None:
                        no_close[name] = content_start
                if close_m is not None:
                    content_end, after = close_m
                else:
                    nxt = self._next_known(content_start, body_end)
                    content_end = after = nxt
                    self.warn(
                        m.start(),
                        f"<{name}> is not closed; read it up to the next tag",
                    )
            child = _Child(raw=buf[content_start:content_end], offset=m.start())
            last = max(last, after)
            i = after
            if name == "alternative":
                alternatives.append(child)
            elif name in found:
                self.warn(m.start(), f"<event> has a second <{name}>; kept the first")
            else:
                found[name] = child
        if alternatives and "alternatives" not in found:
            found["alternatives"] = _Child(
                raw="".join(
                    f"<alternative>{a.raw}</alternative>" for a in alternatives
                ),
                offset=alternatives[0].offset,
            )
        return found, last

    def _find_close(self, name: str, start: int, end: int) -> tuple[int, int] | None:
        buf = self.buf
        pattern = _close_re(name)
        i = start
        while True:
            m = pattern.search(buf, i, end)
            if m is None:
                return None
            if m.group(0).startswith("<!"):
                close = buf.find(_CDATA_CLOSE, m.end(), end)
                if close == -1:
                    return None
                i = close + 3
                continue
            return m.start(), m.end()

    def _next_known(self, start: int, end: int) -> int:
        buf = self.buf
        i = start
        while True:
            m = _KNOWN_OPEN.search(buf, i, end)
            if m is None:
                return end
            if m.group(0).startswith("<!"):
                close = buf.find(_CDATA_CLOSE, m.end(), end)
                if close == -1:
                    return end
                i = close + 3
                continue
            return m.start()

    # -- values ------------------------------------------------------------------------------
    @staticmethod
    def _text(child: _Child) -> str:
        return _decode(child.raw).strip()

    def _optional(self, child: _Child | None) -> str | None:
        if child is None:
            return None
        return self._text(child) or None

    def _alternatives(self, child: _Child | None) -> tuple[str, ...]:
        if child is None:
            return ()
        raw = child.raw
        items: list[str] = []
        i = 0
        pattern = _close_re("alternative")
        saw_tag = False
        while True:
            m = _ALTERNATIVE_OPEN.search(raw, i)
            if m is None:
                break
            if m.group(0).startswith("<!"):
                close = raw.find(_CDATA_CLOSE, m.end())
                i = len(raw) if close == -1 else close + 3
                continue
            saw_tag = True
            j = m.end()
            end = None
            while end is None:
                c = pattern.search(raw, j)
                if c is None:
                    end = (len(raw), len(raw))
                elif c.group(0).startswith("<!"):
                    close = raw.find(_CDATA_CLOSE, c.end())
                    j = len(raw) if close == -1 else close + 3
                    if close == -1:
                        end = (len(raw), len(raw))
                else:
                    end = (c.start(), c.end())
            text = _decode(raw[m.end() : end[0]]).strip()
            if text:
                items.append(text)
            i = end[1]
        if saw_tag:
            return tuple(items)
        text = _decode(raw).strip()
        if not text:
            return ()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1:
            parts = [_LIST_ITEM.sub("", ln).strip() for ln in lines]
        else:
            parts = [p.strip() for p in re.split(r"[;,]", _LIST_ITEM.sub("", text))]
        return tuple(p for p in parts if p)

    def _confidence(self, start: int, child: _Child | None) -> float | None:
        if child is None:
            self.warn(start, "<event> has no <confidence>; left it unknown")
            return None
        text = self._text(child)
        if (
            text.lower() == "unknown"
        ):  # what `to_tags` writes for a confidence never stated
            return None
        m = _NUMBER.fullmatch(text.rstrip("%").rstrip()) if text else None
        if m is None:
            self.warn(
                child.offset,
                f"<confidence> {text[:40]!r} is not a number; left it unknown",
            )
            return None
        value = float(m.group(0))
        if text.endswith("%"):
            value /= 100
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            self.warn(
                child.offset,
                f"<confidence> {text[:40]!r} is outside [0, 1]; left it unknown",
            )
            return None
        return value

    def _timestamp(self, start: int, text: str | None) -> dt.datetime:
        now = dt.datetime.now(dt.UTC)
        if text is None:
            return now
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            value = None
        if value is None or value.tzinfo is None:
            self.warn(
                start,
                f"<event> timestamp {text[:40]!r} is not an ISO time with a zone; used now",
            )
            return now
        return value


def _decode(raw: str) -> str:
    """Entity-decode text outside CDATA sections; keep CDATA content as written."""
    if "<![" not in raw and "&" not in raw:
        return raw
    out: list[str] = []
    i = 0
    while True:
        j = raw.find(_CDATA_OPEN, i)
        if j == -1:
            out.append(html.unescape(raw[i:]))
            break
        out.append(html.unescape(raw[i:j]))
        k = raw.find(_CDATA_CLOSE, j + len(_CDATA_OPEN))
        if k == -1:
            out.append(raw[j + len(_CDATA_OPEN) :])
            break
        out.append(raw[j + len(_CDATA_OPEN) : k])
        i = k + 3
    return "".join(out)


class StreamParser:
    """Read `<event>` tags from model output as it arrives, chunk by chunk.

    Each [`feed`][crucible_trace.StreamParser.feed] returns the events completed by that chunk;
    [`close`][crucible_trace.StreamParser.close] reads what is left and returns the same
    [`ParseResult`][crucible_trace.ParseResult] that
    [`parse_llm_output`][crucible_trace.parse_llm_output] gives for the whole text. Memory holds only
    the unfinished event, not the text already read.

    Examples:
        >>> from crucible_trace import StreamParser
        >>> parser = StreamParser("streamed")
        >>> parser.feed('<event type="decision_made"><decision>Use a ')
        ()
        >>> [e.decision for e in parser.feed("dict</decision><reasoning>fast</reasoning></event>")]
        ['Use a dict']
        >>> len(parser.close().chain)
        1
    """

    def __init__(
        self,
        chain_name: str,
        *,
        chain_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self._chain = new_chain(chain_name, id=chain_id, metadata=metadata)
        self._scanner = _Scanner(self._chain.id)
        self._closed: ParseResult | None = None

    def feed(self, chunk: str) -> tuple[TraceEvent, ...]:
        """Read one chunk; return the events it completed (often none).

        Raises:
            TraceParseError: if `chunk` is not a string or the parser was closed.
        """
        if self._closed is not None:
            raise TraceParseError(
                "this StreamParser is closed; make a new one for more output",
                warnings=(),
            )
        if not isinstance(chunk, str):
            raise TraceParseError(
                f"model output must be text (str), got {type(chunk).__name__}; decode bytes first",
                warnings=(),
            )
        return tuple(self._scanner.feed(chunk, final=False))

    @property
    def chain(self) -> Chain:
        """The chain of the events read so far."""
        return attrs.evolve(self._chain, events=self._scanner.events)

    @property
    def warnings(self) -> tuple[ParseWarning, ...]:
        """The warnings so far."""
        return tuple(self._scanner.warnings)

    def close(self) -> ParseResult:
        """Read the rest (an unclosed last event included) and return the result.

        Calling it again returns the same result.
        """
        if self._closed is None:
            self._scanner.feed("", final=True)
            self._closed = ParseResult(chain=self.chain, warnings=self.warnings)
        return self._closed


def _scan(text: str, chain: Chain) -> _Scanner:
    scanner = _Scanner(chain.id)
    scanner.feed(text, final=True)
    return scanner


def parse_llm_output(
    text: str,
    chain_name: str,
    *,
    chain_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    strict: bool = False,
) -> ParseResult:
    """Read the `<event>` tags of a model's output into a chain.

    Robust to what models really write: events inside markdown fences, missing or unknown tags,
    confidence written as `85%` (read as 0.85) or `unknown` (read as `None`), or out of range or as
    other words (left unknown, with a warning), entities
    and CDATA, unclosed or nested tags, and very long outputs (time is linear in the length). Text
    inside a child tag is taken literally up to its closing tag, so `List<String>` in a reasoning
    survives. Alternatives come from `<alternative>` tags, else one per line, else split on commas.
    Nothing is guessed silently: each problem is a [`ParseWarning`][crucible_trace.ParseWarning]
    on the result. Emits `("crucible", "trace", "event", "created")` for each event read.

    Args:
        text: the model output.
        chain_name: the name of the new chain.
        chain_id: a crucible id for the chain instead of a new one.
        metadata: the chain's metadata (e.g. the model and prompt).
        strict: raise instead of returning warnings.

    Raises:
        TraceParseError: if `text` is not a string, or `strict` and there were warnings.

    Examples:
        >>> from crucible_trace import parse_llm_output
        >>> out = parse_llm_output(
        ...     '<event type="decision_made"><decision>Use a dict</decision>'
        ...     "<reasoning>O(1)</reasoning><confidence>90%</confidence></event>",
        ...     "demo",
        ... )
        >>> out.chain.events[0].confidence, out.ok
        (0.9, True)
    """
    if not isinstance(text, str):
        raise TraceParseError(
            f"model output must be text (str), got {type(text).__name__}; decode bytes first",
            warnings=(),
        )
    chain = new_chain(chain_name, id=chain_id, metadata=metadata)
    scanner = _scan(text, chain)
    result = ParseResult(
        chain=attrs.evolve(chain, events=scanner.events),
        warnings=tuple(scanner.warnings),
    )
    if strict and result.warnings:
        shown = "; ".join(str(w) for w in result.warnings[:5])
        more = len(result.warnings) - 5
        raise TraceParseError(
            f"model output has {len(result.warnings)} problem(s): {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + "; pass strict=False to get the events that could be read",
            warnings=result.warnings,
        )
    return result


def extract_code(text: str) -> str:
    r"""The code of a model's output: the text without its `<event>` tags.

    TraceEvent blocks are removed (an unclosed one up to its last complete child tag). If what is left
    has markdown code fences, the contents of the non-empty fenced blocks are returned, joined by a
    blank line; otherwise what is left, stripped.

    Raises:
        TraceError: if `text` is not a string.

    Examples:
        >>> from crucible_trace import extract_code
        >>> extract_code('<event type="decision_made"><decision>x</decision></event>\n'
        ...              "```python\nprint(1)\n```")
        'print(1)'
    """
    if not isinstance(text, str):
        raise TraceError(
            f"model output must be text (str), got {type(text).__name__}; decode bytes first"
        )
    # events are read only to find their extent, so no created events are emitted
    scanner = _Scanner(new_id("chain"), emit=False)
    scanner.feed(text, final=True)
    pieces: list[str] = []
    i = 0
    for span in scanner.spans:
        pieces.append(text[i : span.start])
        i = max(i, span.end)
    pieces.append(text[i:])
    rest = "".join(pieces)
    blocks = _fenced_blocks(rest)
    if blocks is None:
        return rest.strip()
    return "\n\n".join(b for b in blocks if b.strip())


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.ASCII)


def _fenced_blocks(text: str) -> list[str] | None:
    blocks: list[str] = []
    current: list[str] | None = None
    fence = ""
    for line in text.splitlines():
        m = _FENCE.match(line)
        if current is None:
            if m is not None:
                fence = m.group(1)
                current = []
        elif (
            m is not None
            and m.group(1)[0] == fence[0]
            and len(m.group(1)) >= len(fence)
            and not line.strip()[len(m.group(1)) :].strip()
        ):
            blocks.append("\n".join(current))
            current = None
        else:
            current.append(line)
    if current is not None:
        blocks.append("\n".join(current))
    return blocks if blocks else None


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def to_tags(chain: Chain | Iterable[TraceEvent]) -> str:
    """The events as the `<event>` tags the parser reads (ids, times and parents as attributes).

    `parse_llm_output(to_tags(chain), name)` gives back the same events (all fields but
    `metadata`), for any text, since values are entity-escaped.
    """
    events = chain.events if isinstance(chain, Chain) else tuple(chain)
    out: list[str] = []
    for e in events:
        attrs_ = f'type="{_escape(e.type)}" id="{e.id}" timestamp="{e.timestamp.isoformat()}"'
        if e.parent_ids:
            attrs_ += f' parents="{" ".join(e.parent_ids)}"'
        lines = [f"<event {attrs_}>", f"  <decision>{_escape(e.decision)}</decision>"]
        if e.alternatives:
            lines.append("  <alternatives>")
            lines += [
                f"    <alternative>{_escape(a)}</alternative>" for a in e.alternatives
            ]
            lines.append("  </alternatives>")
        lines.append(f"  <reasoning>{_escape(e.reasoning)}</reasoning>")
        confidence = "unknown" if e.confidence is None else repr(e.confidence)
        lines.append(f"  <confidence>{confidence}</confidence>")
        if e.code_section is not None:
            lines.append(f"  <code_section>{_escape(e.code_section)}</code_section>")
        if e.spec_reference is not None:
            lines.append(
                f"  <spec_reference>{_escape(e.spec_reference)}</spec_reference>"
            )
        lines.append("</event>")
        out.append("\n".join(lines))
    return "\n".join(out) + ("\n" if out else "")


def build_causal_prompt(spec: str, *, types: Iterable[str] | None = None) -> str:
    """Instructions that make a model explain its decisions in `<event>` tags while it works.

    Append the model's answer to [`parse_llm_output`][crucible_trace.parse_llm_output] and the code
    to [`extract_code`][crucible_trace.extract_code].

    Args:
        spec: the task or specification the model should solve.
        types: the event types to offer; every registered type by default.

    Raises:
        InvalidEventError: if a type in `types` is not registered.
    """
    known = event_types()
    chosen = list(known) if types is None else list(types)
    for t in chosen:
        if t not in known:
            raise InvalidEventError(
                f"unknown event type {t!r}; register it with `register_event_type` first",
                field="type",
                value=t,
            )
    listing = "\n".join(f"- {t}: {known[t]}" for t in chosen)
    return f"""{spec.strip()}

While you work, record each significant decision as an event tag, in this exact format:

<event type="EVENT_TYPE">
  <decision>what you decided</decision>
  <alternatives>
    <alternative>an option you considered instead</alternative>
  </alternatives>
  <reasoning>why you chose it over the alternatives</reasoning>
  <confidence>a number from 0.0 to 1.0</confidence>
  <code_section>the function, class or section this concerns</code_section>
  <spec_reference>the part of the specification this answers</spec_reference>
</event>

EVENT_TYPE is one of:
{listing}

Rules:
- One <alternative> tag per option; leave <alternatives> empty if there were none.
- <confidence> is a plain decimal between 0.0 and 1.0 (write 0.85, not 85% or "high").
- Write `<` as &lt; and `&` as &amp; inside tags, or wrap the text in <![CDATA[ ... ]]>.
- Put event tags outside code blocks; put the final code in one fenced code block.
"""
