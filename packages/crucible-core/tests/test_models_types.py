from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crucible_core.exceptions import ValidationError
from crucible_core.models import Completion, Message, Request, Usage
from crucible_core.serde import from_json, to_json
from crucible_core.testing import check_exports


def test_exports() -> None:
    check_exports(
        "crucible_core.models", forbidden=("aiohttp", "tenacity", "scipy", "pyarrow")
    )
    check_exports("crucible_core.retry", forbidden=("aiohttp", "tenacity"))
    check_exports("crucible_core.ratelimit", forbidden=("aiohttp", "tenacity"))


def test_request_needs_exactly_one_of_prompt_and_messages() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Request()
    with pytest.raises(ValidationError, match="exactly one"):
        Request(prompt="a", messages=[{"role": "user", "content": "b"}])


def test_messages_from_dicts() -> None:
    r = Request(
        messages=[
            {"role": "user", "content": "hi"},
            Message(role="assistant", content="yo"),
        ]
    )
    assert r.messages == (
        Message(role="user", content="hi"),
        Message(role="assistant", content="yo"),
    )
    assert r.conversation() == r.messages
    assert Request(prompt="p").conversation() == (Message(role="user", content="p"),)


@pytest.mark.parametrize(
    "messages",
    [
        "hello",
        [{"role": "robot", "content": "x"}],
        [{"role": "user"}],
        [{"role": "user", "content": 3}],
        [42],
    ],
)
def test_bad_messages(messages: object) -> None:
    with pytest.raises(ValidationError):
        Request(messages=messages)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [{"max_tokens": 0}, {"max_tokens": 1.5}, {"max_tokens": True}, {"temperature": -0.1},
     {"temperature": float("nan")}, {"kind": "essay"}, {"prompt": 5}],
)  # fmt: skip
def test_bad_options(options: dict[str, object]) -> None:
    options.setdefault("prompt", "p")
    with pytest.raises(ValidationError):
        Request(**options)  # type: ignore[arg-type]


def test_stop_and_choices_accept_a_string() -> None:
    assert Request(prompt="p", stop="\n").stop == ("\n",)
    assert Request(prompt="p", choices=["A", "B"]).choices == ("A", "B")


def test_short_repr() -> None:
    assert (
        repr(Request(prompt="p", kind="number")) == "Request(prompt='p', kind='number')"
    )


@given(prompt=st.text(), reference=st.none() | st.text(), repeat=st.integers())
def test_fingerprint_is_stable_and_sensitive(
    prompt: str, reference: str | None, repeat: int
) -> None:
    a = Request(prompt=prompt, reference=reference, metadata={"repeat": repeat})
    b = Request(prompt=prompt, reference=reference, metadata={"repeat": repeat})
    assert a.fingerprint() == b.fingerprint()
    assert (
        a.fingerprint()
        != Request(prompt=prompt + "x", reference=reference).fingerprint()
    )
    assert (
        a.fingerprint()
        != Request(
            prompt=prompt, reference=reference, metadata={"repeat": repeat + 1}
        ).fingerprint()
    )


def test_values_round_trip() -> None:
    r = Request(
        messages=[{"role": "user", "content": "hi"}],
        system="s",
        stop=["x"],
        metadata={"item": 3},
    )
    assert from_json(to_json(r), Request) == r
    c = Completion(
        text="t",
        usage=Usage(input_tokens=3, output_tokens=4),
        cost=None,
        raw={"id": "x"},
    )
    assert from_json(to_json(c), Completion) == c
    assert pickle.loads(pickle.dumps(r)) == r
    assert c.usage.total_tokens == 7
