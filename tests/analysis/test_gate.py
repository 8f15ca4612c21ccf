"""Every run ends in a decision: the built-in gate and the exit code CI acts on."""

from __future__ import annotations

from loadtest.analysis.gate import builtin_checks, exit_code, slo_section


def summary(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"counts": {"streams_started": 10, "streams_completed": 9}}
    base.update(fields)
    base["slo"] = slo_section(builtin_checks(base))
    return base


def test_a_run_that_completes_a_stream_passes_the_builtin_gate() -> None:
    done = summary()
    assert done["slo"]["verdict"] == "pass"
    assert exit_code(done) == 0


def test_a_run_that_sends_but_completes_nothing_fails_with_3() -> None:
    done = summary(counts={"streams_started": 10, "streams_completed": 0})
    assert done["slo"]["checks"][0] == {"check": "streams_completed > 0", "verdict": "fail",
                                        "value": 0, "samples": 10, "builtin": True}
    assert exit_code(done) == 3


def test_an_idle_run_is_judged_on_connections() -> None:
    idle = summary(counts={"connections_opened": 500})
    assert [check["check"] for check in idle["slo"]["checks"]] == ["connections_opened > 0"]
    assert exit_code(idle) == 0
    assert exit_code(summary(counts={})) == 3


def test_every_user_stopped_on_auth_fails_even_after_completed_streams() -> None:
    refused = summary(stopped={"reason": "auth", "users": 5, "detail": "…"})
    assert refused["slo"]["verdict"] == "fail"
    assert exit_code(refused) == 3


def test_interrupted_beats_incomplete_beats_a_failed_check() -> None:
    failing = {"counts": {"streams_started": 1, "streams_completed": 0}}
    lost = {"workers_lost": ["vm-1"], "reason": "…"}
    assert exit_code(summary(**failing, incomplete=lost)) == 1
    assert exit_code(summary(**failing, incomplete=lost, interrupted=True,
                             interrupted_by="SIGTERM")) == 143
    assert exit_code(summary(interrupted=True, interrupted_by="SIGINT")) == 130
