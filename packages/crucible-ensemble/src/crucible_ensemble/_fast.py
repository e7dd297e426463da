"""Quick constructors for the value classes built on every prediction (private).

A prediction of five members builds five ballots, five member responses and a result. The
`__init__` attrs writes for a frozen class costs about twice as much as setting the slots directly,
which is what the builders made here do: the same object (equal, hashable, picklable as usual),
from every field given by keyword, defaults included. Like attrs, they are generated code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

__all__ = ("builder",)

_T = TypeVar("_T")


def builder(cls: type[_T], *, positional: bool = False) -> Callable[..., _T]:
    """A function `build(*, field_1, ..., field_n) -> cls` setting the slots of `cls` directly.

    Every field must be given: there are no defaults to forget to update. With `positional`,
    the fields are given in order (`build(field_1, ..., field_n)`), which is quicker still: for
    the hottest calls, checked against the class by the tests.

    Only for slotted attrs classes whose fields have no validator, converter or `on_setattr` hook
    and that have no `__attrs_post_init__`: anything `__init__` would check or convert is refused
    here, once, when the builder is made.

    Raises:
        TypeError: for a class this cannot build faithfully.
    """
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    names = [f.name for f in fields]
    unsafe = [
        f.name
        for f in fields
        if f.validator is not None
        or f.converter is not None
        or f.on_setattr not in (None, attrs.setters.NO_OP)
        or not f.init
    ]
    if (
        unsafe
        or hasattr(cls, "__attrs_post_init__")
        or hasattr(cls, "__attrs_pre_init__")
        or any(not hasattr(getattr(cls, n, None), "__set__") for n in names)
    ):
        raise TypeError(
            f"{cls.__name__} cannot be built directly: it needs slots and no validators, "
            f"converters, setattr hooks or init hooks (fields {unsafe})"
        )
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    star = "" if positional else "*, "
    lines = [f"def build({star}{', '.join(names)}):", "    obj = _new(_cls)"]
    for i, name in enumerate(names):
        namespace[f"_set{i}"] = getattr(cls, name).__set__
        lines.append(f"    _set{i}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), namespace)  # code made from attrs' own field list
    build: Callable[..., _T] = namespace["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    return build
