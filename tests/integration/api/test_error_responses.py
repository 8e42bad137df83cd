"""Each operation in /api/openapi.json lists the errors it can produce, in the one error shape.

What the document says is checked three ways: against rules read from the document itself
(an id in the path can be unknown: 404; any parameter or body can be invalid: 422; body bytes
can be no text at all: 400), against the permission matrix of test_permissions.py (401 where
a role is needed, 403 where more than a viewer is), and against the API's answers to calls
made to fail (no session, a viewer, unknown ids, bad bodies): every error answer must be
documented for its operation and have the documented shape. Schemathesis fuzzes the same
document in test_schemathesis.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from holovitals_sync.api import create_api
from holovitals_sync.api.errors import DECLARED_ERRORS, api_routes
from tests.integration.api.test_permissions import ROUTES

ERROR_REF = "#/components/schemas/ErrorBody"
UNKNOWN_ID = "987654321"
# Would reach out to a URL stored on a row; with an unknown id they stop at the 404 first,
# but a stray row with that id must never send anything, so they are not probed.
NOT_PROBED = {
    ("POST", "/api/connections/{connection_id}/test"),
    ("POST", "/api/sync/webhooks/{subscription_id}/test"),
}
# State changes refused with 409 when the object is not in a state that allows them.
STATE_CONFLICTS = {
    ("POST", "/api/sync/jobs/{job_id}/cancel"),
    ("POST", "/api/sync/jobs/{job_id}/retry"),
    ("POST", "/api/sync/dead-letter/replay"),
    ("POST", "/api/sync/conflicts/{conflict_id}/resolve"),
    ("POST", "/api/alerts/{alert_id}/acknowledge"),
    ("DELETE", "/api/records/{connection_id}/{resource_type}/{remote_id}"),
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return TestClient(create_api()).get("/api/openapi.json").json()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in spec["paths"].items()
            for method, op in ops.items()]  # fmt: skip


def _errors(op: dict[str, Any]) -> set[int]:
    return {int(s) for s in op["responses"] if s.isdigit() and int(s) >= 400}


def _shape(path: str) -> str:
    return re.sub(r"\{\w+\}", "{}", path.split("?")[0])


def _documented(method: str, path: str, operations: dict[tuple[str, str], Any]) -> Any:
    """The operation a matrix entry ("/api/x/{cid}?q=1") calls: whatever its placeholders say."""
    found = [op for (m, p), op in operations.items() if m == method and _shape(p) == _shape(path)]
    assert len(found) == 1, (method, path)
    return found[0]


def test_every_error_response_is_the_shared_shape(spec) -> None:
    body = spec["components"]["schemas"]["ErrorBody"]
    assert body["required"] == ["error"]
    detail = spec["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message"}
    for method, path, op in _operations(spec):
        for status in _errors(op) - {503} if path == "/api/health" else _errors(op):
            schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, (method, path, status)


def test_errors_follow_from_each_operation_signature(spec) -> None:
    for method, path, op in _operations(spec):
        errors, params = _errors(op), op.get("parameters", [])
        if any(p["in"] == "path" for p in params):
            assert 404 in errors, (method, path, "an id in the path can be unknown")
        if params or "requestBody" in op:
            assert 422 in errors, (method, path, "a parameter or body can be invalid")
        else:
            assert 422 not in errors, (method, path, "nothing to be invalid")
        if "requestBody" in op:
            assert 400 in errors, (method, path, "a body can be bytes that are no text")


def test_auth_errors_follow_the_permission_matrix(spec) -> None:
    operations = {(m, p): op for m, p, op in _operations(spec)}
    for method, path, _body, needed in ROUTES:
        errors = _errors(_documented(method, path, operations))
        if needed is None:
            continue  # open routes: a bad token is still refused where the caller is read
        assert 401 in errors, (method, path)
        assert (403 in errors) == (needed != "viewer") or path == "/api/auth/tokens", (
            method,
            path,
            needed,
        )


def test_state_conflicts_are_documented(spec) -> None:
    operations = {(m, p): op for m, p, op in _operations(spec)}
    for key in STATE_CONFLICTS:
        assert 409 in _errors(operations[key]), key


def test_a_route_documents_no_error_it_cannot_produce(spec) -> None:
    operations = {(m, p): op for m, p, op in _operations(spec)}
    assert _errors(operations[("GET", "/api/health")]) == set()
    assert _errors(operations[("GET", "/api/auth/me")]) == {401}
    assert _errors(operations[("GET", "/api/sync/jobs/{job_id}")]) == {401, 404, 422}
    assert 409 not in _errors(operations[("GET", "/api/sync/jobs")])


def test_declared_errors_name_existing_routes() -> None:
    served = {(m, r.path_format) for r in api_routes(create_api()) for m in r.methods}
    assert not set(DECLARED_ERRORS) - served


def _probes(method: str, path: str, op: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests made to fail: unknown ids, an empty JSON object, bodies that do not parse."""
    url = re.sub(r"\{\w+\}", UNKNOWN_ID, path)
    query = {p["name"]: UNKNOWN_ID for p in op.get("parameters", [])
             if p["in"] == "query" and p.get("required")}  # fmt: skip
    probes = [{"method": method, "url": url, "params": query}]
    if "requestBody" in op:
        probes.append({"method": method, "url": url, "params": query, "json": {}})
        for raw in (b"{not json", b"\x80"):  # JSON that does not parse (422), not text (400)
            probes.append(
                {
                    "method": method,
                    "url": url,
                    "params": query,
                    "content": raw,
                    "headers": {"Content-Type": "application/json"},
                }
            )
    return probes


@pytest.mark.parametrize("role", [None, "viewer", "admin"])
def test_every_error_answer_is_documented(world, spec, role) -> None:
    seen: set[int] = set()
    for method, path, op in _operations(spec):
        if (method, path) in NOT_PROBED:
            continue
        for probe in _probes(method, path, op):
            headers = {**world.headers(role), **probe.pop("headers", {})}
            response = world.client.request(**probe, headers=headers)
            if response.status_code < 400:
                continue
            seen.add(response.status_code)
            assert response.status_code in _errors(op), (
                method,
                path,
                role,
                response.status_code,
                response.text[:200],
            )
            error = response.json()["error"]
            assert error["code"] and error["message"], (method, path, response.text[:200])
    # The probes did reach each kind of refusal they are made for.
    assert (
        seen >= {None: {401, 400}, "viewer": {403, 404, 422, 400}, "admin": {404, 422, 400}}[role]
    ), seen
