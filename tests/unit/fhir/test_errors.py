"""Status table, response-to-exception mapping and secret masking."""

import httpx
import orjson
import pytest

from holovitals_sync.fhir.errors import (
    Action,
    AuthenticationError,
    AuthorizationError,
    OperationOutcomeError,
    PreconditionFailed,
    RateLimited,
    ResourceNotFound,
    ServerError,
    error_from_response,
    mask_secrets,
    parse_issues,
    resolve,
)

URL = "https://ehr.example/fhir/Patient/123"


def response(status: int, body: object | None = None) -> httpx.Response:
    content = orjson.dumps(body) if body is not None else b""
    return httpx.Response(status, content=content, request=httpx.Request("GET", URL))


def outcome(diagnostics: str = "Patient John Smith has no such thing") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "not-found", "diagnostics": diagnostics}],
    }


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, Action.SUCCESS),
        (304, Action.SUCCESS),
        (401, Action.REFRESH_TOKEN_THEN_RETRY),
        (408, Action.RETRY),
        (429, Action.RATE_LIMITED),
        (502, Action.RETRY),
        (503, Action.RETRY),
        (504, Action.RETRY),
        (400, Action.FAIL),
        (404, Action.FAIL),
        (500, Action.FAIL),
    ],
)
def test_resolution_table(status: int, action: Action) -> None:
    assert resolve(status).action is action


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, ResourceNotFound),
        (410, ResourceNotFound),
        (401, AuthenticationError),
        (403, AuthorizationError),
        (412, PreconditionFailed),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
        (400, OperationOutcomeError),
        (409, OperationOutcomeError),
    ],
)
def test_status_maps_to_exception(status: int, cls: type) -> None:
    err = error_from_response(response(status, outcome()))
    assert type(err) is cls
    assert err.status == status
    assert err.url == URL


def test_conflict_is_precondition_when_configured() -> None:
    err = error_from_response(response(409), conflict_is_precondition=True)
    assert isinstance(err, PreconditionFailed)


def test_issues_kept_but_diagnostics_not_in_message() -> None:
    err = error_from_response(response(404, outcome()))
    assert err.issues[0].code == "not-found"
    assert "John Smith" in (err.issues[0].diagnostics or "")
    assert "John Smith" not in str(err)
    assert "error/not-found" in str(err)


def test_non_outcome_body_gives_no_issues() -> None:
    assert parse_issues(b"<html>oops</html>") == ()
    assert parse_issues(orjson.dumps({"resourceType": "Patient"})) == ()
    assert parse_issues(b"") == ()


def test_second_401_message_is_clear() -> None:
    err = error_from_response(response(401))
    assert "refused the access token" in str(err)


def test_mask_secrets() -> None:
    text = (
        "Authorization: Bearer abc.def-ghi client_secret=s3cr3t&x=1 "
        '{"access_token": "tok123"} eyJhbGciOi.eyJzdWIiOi.c2ln known-secret-value'
    )
    masked = mask_secrets(text, ["known-secret-value"])
    for secret in ("abc.def-ghi", "s3cr3t", "tok123", "eyJhbGciOi", "known-secret-value"):
        assert secret not in masked
    assert "x=1" in masked


def test_exception_message_is_masked() -> None:
    err = OperationOutcomeError("failed with Bearer abcdef123")
    assert "abcdef123" not in str(err)
