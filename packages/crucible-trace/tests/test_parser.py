"""The parser of model output: messy input, warnings, streaming, round trips and fuzzing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inline_snapshot import snapshot

import crucible_trace as ct

FIELDS = (
    "type",
    "decision",
    "alternatives",
    "reasoning",
    "confidence",
    "code_section",
    "spec_reference",
)


def content(events: tuple[ct.TraceEvent, ...]) -> list[tuple[object, ...]]:
    return [tuple(getattr(e, f) for f in FIELDS) for e in events]


def messages(result: ct.ParseResult) -> list[str]:
    return [w.message for w in result.warnings]


def one(text: str) -> ct.ParseResult:
    return ct.parse_llm_output(text, "t")


def event(body: str, type_: str = "decision_made") -> str:
    return f'<event type="{type_}">{body}</event>'


GOOD = (
    "<decision>Use X</decision><reasoning>fast</reasoning><confidence>0.5</confidence>"
)


# -- what real models write --------------------------------------------------------------------


def test_clean_event_reads_every_field() -> None:
    r = one(
        "Some preamble.\n"
        '<event type="decision_made">\n'
        "  <decision>Use a GenServer</decision>\n"
        "  <alternatives><alternative>Agent</alternative><alternative>ETS, maybe</alternative>"
        "</alternatives>\n"
        "  <reasoning>Simple and supervised</reasoning>\n"
        "  <confidence>0.85</confidence>\n"
        "  <code_section>StateManager</code_section>\n"
        "  <spec_reference>§3.1</spec_reference>\n"
        "</event>\n"
    )
    assert r.ok
    assert content(r.chain.events) == [
        (
            "decision_made",
            "Use a GenServer",
            ("Agent", "ETS, maybe"),
            "Simple and supervised",
            0.85,
            "StateManager",
            "§3.1",
        )
    ]


def test_seed_format_alternatives_split_on_commas() -> None:
    r = one(
        event(
            "<decision>d</decision><alternatives>Agent, ETS table, Database</alternatives>"
            "<reasoning>r</reasoning><confidence>1</confidence>"
        )
    )
    assert r.chain.events[0].alternatives == ("Agent", "ETS table", "Database")


def test_alternatives_as_a_list_one_per_line() -> None:
    r = one(
        event(
            "<decision>d</decision><alternatives>\n- a, with comma\n- b\n1. c\n"
            "</alternatives><reasoning>r</reasoning><confidence>1</confidence>"
        )
    )
    assert r.chain.events[0].alternatives == ("a, with comma", "b", "c")


def test_events_inside_markdown_fences_are_read() -> None:
    r = one("```xml\n" + event(GOOD) + "\n```\n```python\nprint(1)\n```")
    assert [e.decision for e in r.chain.events] == ["Use X"]
    assert r.ok


def test_entities_and_cdata() -> None:
    r = one(
        event(
            "<decision>a &lt;b&gt; &amp; &#x263A; &quot;q&quot;</decision>"
            "<reasoning><![CDATA[x < y && </reasoning> stays]]> &amp; after</reasoning>"
            "<confidence>0.5</confidence>"
        )
    )
    e = r.chain.events[0]
    assert e.decision == 'a <b> & ☺ "q"'
    assert e.reasoning == "x < y && </reasoning> stays & after"
    assert r.ok


def test_generic_types_in_text_survive() -> None:
    r = one(
        event(
            "<decision>Return List<String></decision>"
            "<reasoning>Map<K, V> is <b>fine</b></reasoning><confidence>0.5</confidence>"
        )
    )
    e = r.chain.events[0]
    assert (e.decision, e.reasoning) == (
        "Return List<String>",
        "Map<K, V> is <b>fine</b>",
    )
    assert r.ok


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("0.85", 0.85),
        ("85%", 0.85),
        (" 1 ", 1.0),
        ("0", 0.0),
        (".5", 0.5),
        ("1e-1", 0.1),
    ],
)
def test_confidence_forms_that_are_read(raw: str, value: float) -> None:
    r = one(
        event(
            f"<decision>d</decision><reasoning>r</reasoning><confidence>{raw}</confidence>"
        )
    )
    assert r.chain.events[0].confidence == value
    assert r.ok


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("1.5", "outside [0, 1]"),
        ("85", "outside [0, 1]"),
        ("-0.2", "outside [0, 1]"),
        ("nan", "is not a number"),
        ("inf", "is not a number"),
        ("high", "is not a number"),
        ("", "is not a number"),
        ("0.8 or so", "is not a number"),
    ],
)
def test_bad_confidence_is_left_unknown_with_a_warning(raw: str, why: str) -> None:
    r = one(
        event(
            f"<decision>d</decision><reasoning>r</reasoning><confidence>{raw}</confidence>"
        )
    )
    assert r.chain.events[0].confidence is None
    assert len(r.warnings) == 1
    assert why in r.warnings[0].message
    assert "left it unknown" in r.warnings[0].message


def test_missing_parts_are_reported() -> None:
    r = one(
        event("<decision>only a decision</decision>")
        + "\n<event><decision>no type</decision></event>"
        + '\n<event type="made_up"><decision>x</decision></event>'
        + '\n<event type="decision_made"><reasoning>no decision</reasoning></event>'
        + '\n<event type="decision_made"/>'
    )
    assert [e.decision for e in r.chain.events] == ["only a decision"]
    assert r.chain.events[0].reasoning == ""
    assert messages(r) == snapshot(
        [
            "<event> has no <reasoning>; left it empty",
            "<event> has no <confidence>; left it unknown",
            "<event> has no type attribute; skipped it",
            "<event> has unknown type 'made_up' (register it with `register_event_type`); skipped it",
            "<event> has no <decision>; skipped it",
            "empty <event/> tag has no decision; skipped it",
        ]
    )
    assert [w.line for w in r.warnings] == [1, 1, 2, 3, 4, 5]


def test_registered_custom_type_is_read(custom_type: str) -> None:
    r = one(event(GOOD, custom_type))
    assert r.chain.events[0].type == custom_type


def test_type_is_case_insensitive_and_unknown_tags_are_reported() -> None:
    r = one(
        '<EVENT Type="Decision_Made"><Decision>d</Decision><risk>high</risk>'
        "<reasoning>r</reasoning><confidence>1</confidence></EVENT>"
    )
    assert r.chain.events[0].type == "decision_made"
    assert messages(r) == ["unknown tag <risk> inside <event>; ignored it"]


def test_unclosed_and_nested_events() -> None:
    r = one(
        '<event type="decision_made"><decision>first</decision><reasoning>r</reasoning>'
        "<confidence>0.1</confidence>"
        '<event type="hypothesis_formed"><decision>second</decision><reasoning>r'
        "</reasoning><confidence>0.2</confidence></event>"
        '<event type="decision_made"><decision>third</decision><reasoning>cut off'
    )
    assert [e.decision for e in r.chain.events] == ["first", "second", "third"]
    assert r.chain.events[2].reasoning == "cut off"
    assert messages(r) == snapshot(
        [
            "<event> is not closed with </event> before the next <event>; read it up to there",
            "<event> is not closed with </event> before the end of the output; read it up to there",
            "<reasoning> is not closed; read it up to the next tag",
            "<event> has no <confidence>; left it unknown",
        ]
    )


def test_unclosed_child_ends_at_the_next_child() -> None:
    r = one(event("<decision>d<reasoning>r</reasoning><confidence>0.3</confidence>"))
    e = r.chain.events[0]
    assert (e.decision, e.reasoning, e.confidence) == ("d", "r", 0.3)
    assert messages(r) == ["<decision> is not closed; read it up to the next tag"]


def test_duplicates_attributes_and_ids() -> None:
    r = one(
        '<event type="decision_made" id="evt_01JBZ0000000000000000000B1" mood="x">'
        "<decision>a</decision><decision>b</decision><reasoning>r</reasoning>"
        "<confidence>1</confidence></event>"
        '<event type="decision_made" id="evt_01JBZ0000000000000000000B1" '
        'parents="evt_01JBZ0000000000000000000B1 evt_01JBZ0000000000000000000ZZ" '
        'timestamp="yesterday"><decision>c</decision><reasoning>r</reasoning>'
        "<confidence>1</confidence></event>"
    )
    first, second = r.chain.events
    assert first.id == "evt_01JBZ0000000000000000000B1"
    assert first.decision == "a"
    assert second.id != first.id
    assert second.parent_ids == (first.id,)
    assert messages(r) == snapshot(
        [
            "<event> attribute 'mood' is not known; ignored it",
            "<event> has a second <decision>; kept the first",
            "<event> id 'evt_01JBZ0000000000000000000B1' is not a crucible id or is used twice; gave it a new id",
            "<event> parent 'evt_01JBZ0000000000000000000ZZ' is not an earlier event of this output; dropped it",
            "<event> timestamp 'yesterday' is not an ISO time with a zone; used now",
        ]
    )


def test_malformed_opening_tags() -> None:
    r = one(
        '<event type="decision_made"<decision>x</decision></event>\n<event type="a>'
    )
    assert not r.chain.events
    assert messages(r) == snapshot(
        [
            "malformed <event> opening tag (no closing `>`, or a `<` or an unbalanced quote inside it); skipped it",
            "malformed <event> opening tag (no closing `>`, or a `<` or an unbalanced quote inside it); skipped it",
        ]
    )


def test_unclosed_cdata_is_reported() -> None:
    r = one(
        event("<decision>d</decision><reasoning><![CDATA[never ends", "decision_made")[
            :-8
        ]
    )
    assert r.chain.events[0].decision == "d"
    assert "CDATA section is never closed with `]]>`" in messages(r)


def test_warning_positions() -> None:
    text = "line one\n  " + event("<decision>d</decision><reasoning>r</reasoning>")
    (w,) = one(text).warnings
    assert (w.offset, w.line, w.column) == (11, 2, 3)
    assert w.snippet == text[11:71]
    assert str(w) == "line 2, column 3: <event> has no <confidence>; left it unknown"


def test_strict_mode_raises_with_the_warnings() -> None:
    with pytest.raises(ct.TraceParseError) as info:
        ct.parse_llm_output(event("<decision>d</decision>"), "t", strict=True)
    assert len(info.value.warnings) == 2
    assert "pass strict=False" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_text_is_rejected() -> None:
    with pytest.raises(ct.TraceParseError, match="decode bytes first"):
        ct.parse_llm_output(b"<event>", "t")  # type: ignore[arg-type]


def test_very_long_output_is_read_whole() -> None:
    block = event(GOOD) + "\nfiller text " * 20 + "\n"
    text = block * 5000 + "<" * 100_000 + "<event " * 2000
    r = one(text)
    assert len(r.chain.events) == 5000
    assert len(r.warnings) == 2000  # each stray "<event " is a malformed opening tag


def test_parse_emits_created_events(captured: list) -> None:
    r = one(event(GOOD) + event(GOOD))
    names = [n[-2:] for n, _, _ in captured]
    assert names == [("chain", "created"), ("event", "created"), ("event", "created")]
    _, measurements, metadata = captured[1]
    assert measurements == {"confidence": 0.5}
    assert metadata == {
        "type": "decision_made",
        "chain_id": r.chain.id,
        "event_id": r.chain.events[0].id,
    }


def test_parse_result_views() -> None:
    r = one(event("<decision>d</decision><reasoning>r</reasoning>"))
    assert not r.ok
    text = r.render()
    assert "warnings         1" in text
    assert "line 1, column 1: <event> has no <confidence>" in text
    assert "&lt;event&gt;" in r._repr_html_()


# -- extract_code and the prompt -------------------------------------------------------------


def test_extract_code_from_fences() -> None:
    text = (
        "I will write it.\n"
        + event(GOOD)
        + "\n```python\ndef f():\n    return 1\n```\nmore prose\n~~~\nsecond()\n~~~\n"
    )
    assert ct.extract_code(text) == "def f():\n    return 1\n\nsecond()"


def test_extract_code_without_fences_removes_tags_only() -> None:
    text = "x = 1\n" + event(GOOD) + "\ny = 2\n"
    assert ct.extract_code(text) == "x = 1\n\ny = 2"


def test_extract_code_keeps_code_after_an_unclosed_event() -> None:
    text = 'x = 1\n<event type="decision_made"><decision>d</decision>\ny = 2'
    assert ct.extract_code(text) == "x = 1\n\ny = 2"


def test_extract_code_with_an_unclosed_fence() -> None:
    assert ct.extract_code("```\nprint(1)\n") == "print(1)"


def test_extract_code_emits_nothing(captured: list) -> None:
    ct.extract_code(event(GOOD))
    assert captured == []


def test_extract_code_rejects_bytes() -> None:
    with pytest.raises(ct.TraceError):
        ct.extract_code(b"x")  # type: ignore[arg-type]


def test_prompt_lists_types_and_format(custom_type: str) -> None:
    prompt = ct.build_causal_prompt(
        "  Write fizzbuzz.  ", types=["decision_made", custom_type]
    )
    assert prompt == snapshot("""\
Write fizzbuzz.

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
- decision_made: a choice was made
- test_written: a test was written

Rules:
- One <alternative> tag per option; leave <alternatives> empty if there were none.
- <confidence> is a plain decimal between 0.0 and 1.0 (write 0.85, not 85% or "high").
- Write `<` as &lt; and `&` as &amp; inside tags, or wrap the text in <![CDATA[ ... ]]>.
- Put event tags outside code blocks; put the final code in one fenced code block.
""")
    assert "- uncertainty_flagged:" in ct.build_causal_prompt("x")


def test_prompt_rejects_unknown_types() -> None:
    with pytest.raises(ct.InvalidEventError, match="register_event_type"):
        ct.build_causal_prompt("x", types=["nope"])


def test_prompt_output_parses() -> None:
    """The example in the prompt is itself well-formed enough to read (apart from the type)."""
    prompt = ct.build_causal_prompt("x").replace("EVENT_TYPE", "decision_made", 1)
    r = one(prompt)
    assert r.chain.events[0].decision == "what you decided"
    assert "a number from 0.0 to 1.0" in messages(r)[0]


# -- properties ------------------------------------------------------------------------------

texts = (
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=25)
    .map(str.strip)
    .filter(bool)
)


@st.composite
def chains(draw: st.DrawFn) -> ct.Chain:
    n = draw(st.integers(0, 6))
    chain = ct.new_chain(draw(texts))
    made: list[ct.TraceEvent] = []
    for _ in range(n):
        parents = (
            draw(st.lists(st.sampled_from(made), max_size=2, unique_by=lambda e: e.id))
            if made
            else []
        )
        made.append(
            ct.create_event(
                draw(st.sampled_from(sorted(ct.BUILTIN_EVENT_TYPES))),
                draw(texts),
                draw(st.one_of(st.just(""), texts)),
                alternatives=draw(st.lists(texts, max_size=3)),
                confidence=draw(st.one_of(st.none(), st.floats(0, 1))),
                code_section=draw(st.one_of(st.none(), texts)),
                spec_reference=draw(st.one_of(st.none(), texts)),
                parent_ids=[p.id for p in parents],
                timestamp=draw(
                    st.datetimes(
                        min_value=dt.datetime(1000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
                        timezones=st.sampled_from(
                            [dt.UTC, dt.timezone(dt.timedelta(hours=-5))]
                        ),
                    )
                ),
            )
        )
    return ct.add_events(chain, made)


@given(chains())
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_parse_of_rendered_tags_round_trips(chain: ct.Chain) -> None:
    r = ct.parse_llm_output(ct.to_tags(chain), chain.name)
    assert r.ok, r.warnings
    assert r.chain.events == chain.events


junk = st.text(
    st.characters(exclude_characters="<", exclude_categories=("Cs",)), max_size=40
)


@given(chains(), st.data())
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
def test_well_formed_events_survive_surrounding_text(
    chain: ct.Chain, data: st.DataObject
) -> None:
    blocks = ct.to_tags(chain).split("\n</event>\n")
    pieces = []
    for block in blocks:
        pieces.append(data.draw(junk))
        pieces.append(block + ("\n</event>\n" if not block.endswith("\n") else ""))
    pieces.append(data.draw(junk))
    text = "".join(pieces)
    assert ct.parse_llm_output(text, "x").chain.events == chain.events


TOKENS = [
    "<event",
    "<EVENT",
    ' type="decision_made"',
    " type='hypothesis_formed'",
    " type=bogus",
    ' id="evt_01JBZ0000000000000000000B1"',
    ' parents="evt_01JBZ0000000000000000000B1"',
    ">",
    "/>",
    "</event>",
    "</event >",
    "<decision>",
    "</decision>",
    "<reasoning>",
    "</reasoning>",
    "<confidence>",
    "</confidence>",
    "0.5",
    "1.5",
    "nan",
    "85%",
    "<alternatives>",
    "</alternatives>",
    "<alternative>",
    "</alternative>",
    "<code_section/>",
    "<spec_reference>",
    "<![CDATA[",
    "]]>",
    "&amp;",
    "&#x110000;",
    "&#0;",
    "&bogus;",
    "\n",
    "```",
    "~~~",
    "x",
    "<",
    "'",
    '"',
    "<b>",
    "</",
    "- ",
    ",",
    "\u2028",
    "ſ",
    "İ",
    '<event type="decision_made">',
    "<decision>d</decision>",
    GOOD,
    event(GOOD),
]
fragments = st.lists(
    st.one_of(st.sampled_from(TOKENS), st.text(max_size=4)), max_size=60
).map("".join)


@given(st.one_of(st.text(), fragments))
@settings(max_examples=400)
def test_parser_never_raises_on_any_text(text: str) -> None:
    r = ct.parse_llm_output(text, "fuzz")
    for w in r.warnings:
        assert 0 <= w.offset <= len(text)
        assert text.startswith(w.snippet, w.offset)
    ct.extract_code(text)


def _comparable(r: ct.ParseResult) -> tuple[object, ...]:
    return (
        [
            (e.id if e.id.startswith("evt_01JBZ") else "fresh", *c)
            for e, c in zip(r.chain.events, content(r.chain.events), strict=True)
        ],
        [(w.message, w.offset, w.line, w.column, w.snippet) for w in r.warnings],
    )


@given(fragments, st.lists(st.integers(0, 400), max_size=8))
@settings(max_examples=400)
def test_streaming_gives_the_same_result_for_any_split(
    text: str, cuts: list[int]
) -> None:
    points = sorted({min(c, len(text)) for c in cuts})
    parser = ct.StreamParser("s")
    streamed: list[ct.TraceEvent] = []
    last = 0
    for p in [*points, len(text)]:
        streamed += parser.feed(text[last:p])
        last = p
    result = parser.close()
    # feed returns events as they complete; close may complete one more (an unclosed last one)
    assert list(result.chain.events[: len(streamed)]) == streamed
    assert len(result.chain.events) - len(streamed) in (0, 1)
    whole = ct.parse_llm_output(text, "s")
    a, b = _comparable(result), _comparable(whole)
    # ids given in the text are kept; the others are fresh in each parse
    assert [x[0] for x in a[0]] == [x[0] for x in b[0]]
    assert [x[1:] for x in a[0]] == [x[1:] for x in b[0]]
    assert a[1] == b[1]


def test_stream_character_by_character(sample_chain: ct.Chain) -> None:
    text = "intro " + ct.to_tags(sample_chain) + " outro"
    parser = ct.StreamParser("s")
    seen = []
    for ch in text:
        seen += parser.feed(ch)
    assert [e.decision for e in seen] == [e.decision for e in sample_chain.events]
    assert parser.close().chain.events == sample_chain.events
    assert parser.close() is parser.close()


def test_stream_rejects_use_after_close_and_bytes() -> None:
    parser = ct.StreamParser("s")
    with pytest.raises(ct.TraceParseError, match="decode bytes"):
        parser.feed(b"x")  # type: ignore[arg-type]
    parser.close()
    with pytest.raises(ct.TraceParseError, match="closed"):
        parser.feed("x")


def test_stream_holds_only_the_unfinished_tail() -> None:
    parser = ct.StreamParser("s")
    for _ in range(200):
        parser.feed(event(GOOD) + "filler " * 50)
    assert len(parser.chain) == 200
    assert len(parser._scanner.buf) < 10
    assert parser.warnings == ()


def test_warning_snippets_stay_inside_the_text() -> None:
    text = "ab\n<event type=x"
    (w,) = one(text).warnings
    assert re.fullmatch(r"<event type=x", w.snippet)


TRICKY = [
    "intro <event type='decision_made' id=\"evt_01JBZ0000000000000000000B1\">"
    "<decision>a<![CDATA[</event> <event x]]>b</decision><reasoning>r</reasoning>"
    "<confidence>0.5</confidence></event  > tail",
    '<event type="decision_made"><decision>d</decision><reasoning><![CDATA[never',
    '<event type="decision_made" id><decision>d</decision>'
    "<alternative>top-level one</alternative><alternative><![CDATA[x</alternative>]]>y"
    "</alternative><alternative>unclosed"
    '</event><event type="decision_made" type="hypothesis_formed"><decision>e</decision>'
    "<alternatives><alternative>z<![CDATA[ open",
    '<event type="decision_made"><![CDATA[<decision>hidden</decision>]]><decision>seen'
    "</decision><reasoning>r<![CDATA[ unclosed in an unclosed child",
    '<event type="decision_made"><decision>d<![CDATA[ x ]]><reasoning>r</reasoning>'
    '<confidence>1</confidence></event><event type="bogus"><decision>x<![CDATA[',
    '<event type="decision_made"><alternatives>a<![CDATA[, b]]>, c</alternatives>'
    "<decision>d</decision><decision>dup</decision><code_section/></event>",
]


@pytest.mark.parametrize("text", TRICKY)
def test_streaming_matches_at_every_split_point(text: str) -> None:
    whole = _comparable(ct.parse_llm_output(text, "s"))
    for cut in range(len(text) + 1):
        parser = ct.StreamParser("s")
        parser.feed(text[:cut])
        parser.feed(text[cut:])
        assert _comparable(parser.close()) == whole, cut
    bytewise = ct.StreamParser("s")
    for ch in text:
        bytewise.feed(ch)
    assert _comparable(bytewise.close()) == whole


def test_tricky_texts_read_as_documented() -> None:
    r0, r1, r2, r3, r4, r5 = (one(t) for t in TRICKY)
    assert r0.chain.events[0].decision == "a</event> <event xb"
    assert r0.ok
    assert [e.decision for e in r1.chain.events] == ["d"]
    assert r2.chain.events[0].alternatives == (
        "top-level one",
        "x</alternative>y",
        "unclosed",
    )
    assert r2.chain.events[1].alternatives == ("z open",)
    assert "<event> attribute 'id' has no value; ignored it" in messages(r2)
    assert "<event> attribute 'type' is given twice; kept the first" in messages(r2)
    assert r3.chain.events[0].decision == "seen"
    assert r3.chain.events[0].reasoning == "r unclosed in an unclosed child"
    assert r4.chain.events[0].decision == "d x"
    assert r5.chain.events[0].alternatives == ("a", "b", "c")
    assert r5.chain.events[0].code_section is None
