"""Settling before the load: the one-off costs are paid before the first stream."""

from __future__ import annotations

import gc
import importlib
import inspect
import sys
from collections.abc import Iterator

import pytest

from loadtest.users.quiet_start import settle_before_load


@pytest.fixture
def absfile_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every ``inspect.getabsfile`` call: ``getmodule`` makes one per module it maps."""
    calls: list[object] = []
    real = inspect.getabsfile

    def counting(obj: object, _filename: str | None = None) -> str:
        calls.append(obj)
        return real(obj, _filename)

    monkeypatch.setattr(inspect, "getabsfile", counting)
    yield calls


def stop_as_locust_does() -> None:
    """What ``locust.runners.Runner.stop`` does before it fires ``test_stopping``."""
    inspect.getframeinfo(inspect.stack()[1][0])


def test_after_settling_locusts_stop_maps_no_module_again(absfile_calls: list[object]) -> None:
    module = importlib.util.module_from_spec(
        importlib.util.spec_from_loader("loadtest_fresh_module_for_test", loader=None)
    )
    module.__file__ = __file__.replace(".py", "_not_a_file.py")
    sys.modules[module.__name__] = module  # a module inspect has not mapped yet
    try:
        settle_before_load()
        mapped_while_settling = [m for m in absfile_calls if inspect.ismodule(m)]
        assert module in mapped_while_settling, "settling maps the modules loaded so far"
        absfile_calls.clear()
        stop_as_locust_does()
        assert not [m for m in absfile_calls if inspect.ismodule(m)]
    finally:
        del sys.modules[module.__name__]


def test_settling_freezes_the_start_up_heap_out_of_the_collectors_reach() -> None:
    gc.unfreeze()
    try:
        settle_before_load()
        assert gc.get_freeze_count() > 0
        assert gc.get_count()[2] == 0, "the oldest generation's count starts afresh"
    finally:
        gc.unfreeze()
