"""A window: counts with labels, gauges, loud errors for unknown names, the wire form."""

from __future__ import annotations

import msgpack
import pytest

from loadtest.metrics.window import MetricWindow


def test_count_with_a_label_increments_total_and_breakdown() -> None:
    window = MetricWindow(10.0, 11.0)

    window.count("connection_failures", by="401")
    window.count("connection_failures", by="401")
    window.count("connection_failures", by="timeout")
    window.count("disconnects", by=1006)  # close codes may be ints; labels are strings
    window.count("streams_started", 5)

    assert window.counts == {"connection_failures": 3, "disconnects": 1, "streams_started": 5}
    assert window.breakdowns == {
        "connection_failures": {"401": 2, "timeout": 1},
        "disconnects": {"1006": 1},
    }


def test_unknown_names_fail_loudly() -> None:
    window = MetricWindow(0.0, 1.0)

    with pytest.raises(ValueError, match="unknown metric"):
        window.record("ttfc", 1.0)
    with pytest.raises(ValueError, match="unknown counter"):
        window.count("stream_started")
    with pytest.raises(ValueError, match="no breakdown"):
        window.count("reconnects", by="x")
    with pytest.raises(ValueError, match="unknown gauge"):
        window.gauge("cpu", 0.5)


def test_gauge_keeps_last_and_max() -> None:
    window = MetricWindow(0.0, 1.0)

    for value in (0.2, 0.9, 0.4):
        window.gauge("cpu_share", value)

    assert (window.gauges["cpu_share"].last, window.gauges["cpu_share"].max) == (0.4, 0.9)


def test_wire_round_trip_through_msgpack_keeps_everything() -> None:
    window = MetricWindow(10.0, 11.0)
    for value in (1.0, 2.0, 99_999_999.0):
        window.record("ttfc_ms", value)
    window.count("protocol_violations", by="cross_talk")
    window.gauge("cpu_share", 0.5)

    # Locust packs worker reports with msgpack, as here.
    wire = msgpack.unpackb(msgpack.packb(window.to_wire(), use_bin_type=True), raw=False)
    rebuilt = MetricWindow.from_wire(wire)

    assert rebuilt.summary() == window.summary()
    assert rebuilt.histograms["ttfc_ms"].out_of_range == 1


def test_from_wire_refuses_unknown_versions() -> None:
    wire = MetricWindow(0.0, 1.0).to_wire() | {"v": 99}

    with pytest.raises(ValueError, match="version"):
        MetricWindow.from_wire(wire)
