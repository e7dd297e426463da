"""Quick constructors for the value classes built on every prediction (private).

A prediction of five members builds five ballots, five member responses and a result. The
`__init__` attrs writes for a frozen class costs about twice as much as setting the slots directly,
which is what the builders made here do: the same object (equal, hashable, picklable as usual),
from every field given by keyword, defaults included. Like attrs, they are generated code.

A frozen class refuses `obj.field = value`, so each slot is set through its descriptor's
`__set__`, a call that costs far more than the store itself. Where Python allows it, the builder
instead makes the object as an unfrozen twin of the class (a subclass adding nothing but
`object.__setattr__`, so the same layout), stores the fields as plain attribute writes, and then
gives the object its real class (`obj.__class__ = cls`): about a third of the time, and the same
object. Not on a free-threaded build, where a `__class__` assignment stops every thread.
"""

from __future__ import annotations

import keyword
import sysconfig
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
    twin = _twins[cls] if cls in _twins else _unfrozen_twin(cls, tuple(names))
    _twins[cls] = twin
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_twin": twin}
    star = "" if positional else "*, "
    lines = [f"def build({star}{', '.join(names)}):"]
    if twin is not None:
        lines.append("    obj = _new(_twin)")
        lines += [f"    obj.{name} = {name}" for name in names]
        lines.append("    obj.__class__ = _cls")
    else:
        lines.append("    obj = _new(_cls)")
        for i, name in enumerate(names):
            namespace[f"_set{i}"] = getattr(cls, name).__set__
            lines.append(f"    _set{i}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), namespace)  # code made from attrs' own field list
    build: Callable[..., _T] = namespace["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    return build


_twins: dict[type[Any], type[Any] | None] = {}  # one twin per class


def _unfrozen_twin(cls: type[Any], names: tuple[str, ...]) -> type[Any] | None:
    """A subclass of `cls` with its layout and plain attribute writes, if objects may change to `cls`.

    `None` on a free-threaded build, for field names a plain write would not reach (private
    `__x`, keywords), or when Python refuses the `__class__` assignment.
    """
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None
    if any(n.startswith("__") or keyword.iskeyword(n) for n in names):
        return None
    try:
        twin = type(
            cls.__name__,
            (cls,),
            {
                "__slots__": (),
                "__setattr__": object.__setattr__,
                "__delattr__": object.__delattr__,
                "__module__": cls.__module__,
                "__qualname__": f"{cls.__qualname__}.<unfrozen twin>",
            },
        )
        probe: Any = object.__new__(twin)
        probe.__class__ = cls
    except TypeError:  # not the same layout after all
        return None
    return twin
