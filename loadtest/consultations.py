"""``POST /consultations``: the REST call that opens a consultation before its WebSocket.

The app creates one consultation per conversation and then connects to it; the simulated
client does the same, through the one :class:`~loadtest.rest.RestClient`.
"""

from __future__ import annotations

from collections.abc import Callable

from loadtest.rest import RestClient, RestError, target_address

CREATE_PATH = "/consultations"
CREATE_CALL = f"POST {CREATE_PATH}"

#: ``(call, elapsed_ms, kind or None)``: the shape of ``SessionObserver.rest_call``.
RestObserver = Callable[[str, float, str | None], None]


def create_consultation(
    client: RestClient,
    http_base: str,
    user_index: int,
    consultation_type: str,
    token_value: str | None,
    api_key: str | None,
    *,
    observe: RestObserver | None = None,
) -> str:
    """Create a consultation as the FitIQ app does and return its id.

    Body ``{"user_id": "loadtest-user-N", "consultation_type": …, "initial_message": null}``;
    headers ``Authorization: Bearer <token>`` (when there is a token) and ``X-API-Key`` (when
    there is a key). The server decides the owner from the token, whatever ``user_id`` says.

    Args:
        client: the process's REST client (TLS trust, timeout, no proxy).
        http_base: the target's REST base URL, e.g. ``Endpoints.http_base``.
        user_index: which simulated user (names it in ``user_id``).
        consultation_type: ``nutrition`` …
        token_value: the access token, or ``None`` for a target without auth.
        api_key: ``X-API-Key``, or ``None``.
        observe: called exactly once, success or failure, with
            ``("POST /consultations", elapsed_ms, None or the failure kind)``.

    Returns:
        The consultation id, as a string.

    Raises:
        RestError: refused (``kind`` is the status), unreachable, timed out, or answered
            without an ``id`` (``kind`` ``"invalid"``).
    """
    headers: dict[str, str] = {}
    if token_value is not None:
        headers["Authorization"] = f"Bearer {token_value}"
    if api_key:
        headers["X-API-Key"] = api_key
    body = {
        "user_id": f"loadtest-user-{user_index}",
        "consultation_type": consultation_type,
        "initial_message": None,
    }
    try:
        answer = client.post_json(http_base, CREATE_PATH, body, headers)
        consultation_id = answer.body.get("id") if isinstance(answer.body, dict) else None
        if isinstance(consultation_id, bool) or not isinstance(consultation_id, str | int) or (
            consultation_id == ""
        ):
            where = target_address(http_base)
            raise RestError(CREATE_CALL, "invalid", answer.elapsed_ms, where, "no id in the answer")
    except RestError as exc:
        if observe is not None:
            observe(CREATE_CALL, exc.elapsed_ms, exc.kind)
        raise
    if observe is not None:
        observe(CREATE_CALL, answer.elapsed_ms, None)
    return str(consultation_id)
