"""When every user is refused, one line names what the target said and what to check."""

from __future__ import annotations

from loadtest.users.refusal import refusal_line


def test_a_401_points_at_the_token_source_and_the_api_key() -> None:
    line = refusal_line({"401": 5})
    assert "401 ×5" in line and "--api-key" in line and "--jwt-secret" in line


def test_a_404_points_at_the_consultation_id() -> None:
    assert "--consultation-id" in refusal_line({"404": 3})


def test_a_refused_login_points_at_the_login_file() -> None:
    assert "--login-file" in refusal_line({"POST /auth/login 401": 2})


def test_the_most_common_status_comes_first_and_sets_the_hint() -> None:
    line = refusal_line({"404": 1, "403": 4})
    assert line.index("403 ×4") < line.index("404 ×1")
    assert "X-API-Key" in line
