from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from crucible_core import context


def test_use_nests_and_restores() -> None:
    assert context.current() == context.Context()
    with context.use(experiment_id="e", condition="a", fold=2) as outer:
        assert outer.extra == {"fold": 2}
        with context.use(condition="b", repeat=1, item="i7"):
            cur = context.current()
            assert (cur.experiment_id, cur.condition, cur.repeat, cur.item) == (
                "e",
                "b",
                1,
                "i7",
            )
            assert cur.as_dict() == {
                "experiment_id": "e",
                "condition": "b",
                "repeat": 1,
                "item": "i7",
                "fold": 2,
            }
        assert context.current().condition == "a"
    assert context.current() == context.Context()


def test_plain_threads_start_empty_and_bind_carries_context() -> None:
    out: list[str | None] = []
    with context.use(condition="x"):
        t = threading.Thread(target=lambda: out.append(context.current().condition))
        t.start()
        t.join()
        with ThreadPoolExecutor(2) as pool:
            bound = pool.submit(
                context.bind(lambda: context.current().condition)
            ).result()
    assert out == [None]
    assert bound == "x"


def test_context_var_is_the_variable_use_sets() -> None:
    var = context.context_var()
    assert var.get() is context.current()
    with context.use(condition="c"):
        assert var.get() is context.current()
        assert var.get().condition == "c"
    assert var.get().condition is None
