from __future__ import annotations

import pickle

import pytest

from crucible_core import exceptions as exc
from crucible_core._optional import import_optional


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (exc.ValidationError, ValueError),
        (exc.ConfigurationError, ValueError),
        (exc.MissingDependencyError, ImportError),
        (exc.SerializationError, ValueError),
        (exc.NetworkError, ConnectionError),
        (exc.ProviderTimeoutError, TimeoutError),
    ],
)
def test_leaves_are_builtins_too(
    cls: type[exc.CrucibleError], builtin: type[Exception]
) -> None:
    err = cls("message", field="x")
    assert isinstance(err, builtin)
    assert isinstance(err, exc.CrucibleError)


@pytest.mark.parametrize(
    "cls", [getattr(exc, n) for n in exc.__all__ if n.endswith("Error")]
)
def test_errors_pickle_with_context(cls: type[exc.CrucibleError]) -> None:
    err = cls("what went wrong; how to fix it", status=429, retry_after=1.5)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert str(back) == "what went wrong; how to fix it"
    assert back.status == 429 and back.retry_after == 1.5
    assert back.context == {"status": 429, "retry_after": 1.5}


def test_import_optional_names_the_pip_line() -> None:
    with pytest.raises(
        exc.MissingDependencyError, match=r'pip install "crucible-x\[thing\]"'
    ) as info:
        import_optional("no_such_module_here", extra="thing", distribution="crucible-x")
    assert info.value.extra == "thing"
    assert import_optional("json", extra="none").dumps([1]) == "[1]"
