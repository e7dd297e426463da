"""The quick constructors of the hot path build exactly what the classes' own `__init__` builds."""

from __future__ import annotations

import pickle
import weakref

import attrs
import pytest

from crucible_ensemble import Ballot, EnsembleResult, MemberResponse, _fast
from crucible_ensemble._fast import builder


def test_builders_match_the_attrs_init() -> None:
    ballot = builder(Ballot)(
        member="m", position=1, answer="B", weight=2.0, confidence=None
    )
    assert ballot == Ballot(member="m", position=1, answer="B", weight=2.0)
    assert hash(ballot) == hash(Ballot(member="m", position=1, answer="B", weight=2.0))
    response = MemberResponse(member="m", status="failed", error="boom")
    fields = {f.name: getattr(response, f.name) for f in attrs.fields(MemberResponse)}
    built = builder(MemberResponse)(**fields)
    assert built == response and pickle.loads(pickle.dumps(built)) == response
    plain = EnsembleResult(answer="B", votes={"B": 1})
    result = builder(EnsembleResult)(
        **{f.name: getattr(plain, f.name) for f in attrs.fields(EnsembleResult)}
        | {"responses": (built,)}
    )
    assert result == EnsembleResult(answer="B", votes={"B": 1}, responses=(response,))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.answer = "C"  # type: ignore[misc]


def test_every_field_is_required() -> None:
    with pytest.raises(TypeError, match="confidence"):
        builder(Ballot)(member="m", position=1, answer="B", weight=2.0)


def test_classes_with_checks_are_refused() -> None:
    @attrs.define(frozen=True)
    class Checked:
        x: int = attrs.field(validator=attrs.validators.instance_of(int))

    @attrs.define(frozen=True)
    class Hooked:
        x: int

        def __attrs_post_init__(self) -> None:
            pass

    for cls in (Checked, Hooked):
        with pytest.raises(TypeError, match="cannot be built directly"):
            builder(cls)


def test_positional_builders_take_the_fields_in_order() -> None:
    response = MemberResponse(
        member="m", status="answered", answer="B", text="(B)", latency=0.5, cost=0.25
    )
    values = [getattr(response, f.name) for f in attrs.fields(MemberResponse)]
    built = builder(MemberResponse, positional=True)(*values)
    assert built == response and repr(built) == repr(response)
    with pytest.raises(TypeError):
        builder(MemberResponse, positional=True)(*values[:-1])


@pytest.mark.parametrize("cls", [Ballot, MemberResponse, EnsembleResult])
@pytest.mark.parametrize("twin", [True, False])
def test_built_objects_are_the_class_itself(cls, twin, monkeypatch) -> None:
    """With the unfrozen twin (GIL builds) or slot by slot (free-threaded): the same object."""
    if not twin:  # as on a free-threaded build
        monkeypatch.setattr(_fast.sysconfig, "get_config_var", lambda name: 1)
        monkeypatch.setattr(_fast, "_twins", {})
    values = {
        Ballot: {"member": "m", "position": 2, "answer": "B", "weight": 0.5},
        MemberResponse: {"member": "m", "status": "failed", "error": "boom"},
        EnsembleResult: {"answer": "B", "votes": {"B": 2}, "members_called": 2},
    }[cls]
    expected = cls(**values)
    fields = {f.name: getattr(expected, f.name) for f in attrs.fields(cls)}
    built = builder(cls)(**fields)
    assert (_fast._unfrozen_twin(cls, tuple(fields)) is not None) is twin
    assert type(built) is cls and built == expected
    if cls is not EnsembleResult:  # (a result holds a dict: unhashable, as usual)
        assert hash(built) == hash(expected)
    assert repr(built) == repr(expected)
    assert pickle.loads(pickle.dumps(built)) == expected
    assert attrs.asdict(built) == attrs.asdict(expected)
    assert weakref.ref(built)() is built
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.answer = "C"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del built.answer


def test_no_twin_for_names_a_plain_write_would_not_reach() -> None:
    assert _fast._unfrozen_twin(Ballot, ("member", "__private")) is None
    assert _fast._unfrozen_twin(Ballot, ("member", "class")) is None
