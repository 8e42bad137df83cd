"""Client-side rate limits per base URL, athenahealth's signed notifications, and the
generic adapter's auth methods."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from holovitals_sync.adapters import ConnectionSpec, adapter_for, verify_hub_signature
from holovitals_sync.fhir.auth import SmartAuth
from holovitals_sync.fhir.ratelimit import limiter_for
from holovitals_sync.models.enums import AuthMethod
from tests.integration.adapters.conftest import Receiver


def _via_localhost(spec: ConnectionSpec) -> ConnectionSpec:
    # Another spelling of the same server: a base URL of its own, so a fresh bucket.
    return ConnectionSpec(
        **{**spec.__dict__, "base_url": spec.base_url.replace("127.0.0.1", "localhost")}
    )


def test_eclinicalworks_limiter_counts_token_calls(env_of: Any) -> None:
    env = env_of("eclinicalworks")
    spec = _via_localhost(env.spec)
    with adapter_for(spec) as adapter:
        limiter = adapter.client.core._limiter
        assert limiter is limiter_for(spec.base_url, 250)  # shared per base URL
        assert limiter.rate == pytest.approx(250 / 60)
        full = limiter.capacity
        started = time.monotonic()
        steps = adapter.test_connection()
        used = full - limiter._tokens
        refilled = limiter.rate * (time.monotonic() - started)
    assert all(s.ok for s in steps)
    sent = [r for r in env.server.stats()["recent"] if not r["path"].startswith("/_sandbox")]
    assert any(r["path"].endswith("/auth/token") for r in sent)
    # Every request took a token from the bucket, the token call included.
    assert len(sent) - refilled - 0.01 <= used <= len(sent) + 0.01


def test_athenahealth_token_endpoint_has_its_own_limit(env_of: Any) -> None:
    env = env_of("athenahealth")
    spec = _via_localhost(env.spec)
    with adapter_for(spec) as adapter:
        assert adapter.client.core._limiter is None  # no documented FHIR limit
        auth = adapter.client.core.auth
        assert isinstance(auth, SmartAuth)
        auth.token()
        limiter = limiter_for(auth.token_url, 50)
        assert limiter is not None and limiter.capacity - limiter._tokens >= 0.9


def test_athenahealth_notifications_carry_a_hub_signature(env_of: Any, receiver: Receiver) -> None:
    env = env_of("athenahealth")
    receiver.received.clear()
    answer = env.server.notify(
        f"{receiver.origin}/hook", "hub-secret", resource="Observation/obs-00001-002"
    )
    assert answer["status"] == 200
    headers, body = receiver.received[-1]
    signature = {k.lower(): v for k, v in headers.items()}["x-hub-signature"]
    assert signature.startswith("sha256=")
    assert verify_hub_signature(body, signature, "hub-secret")
    assert not verify_hub_signature(body + b" ", signature, "hub-secret")
    assert not verify_hub_signature(body, signature, "other-secret")


@pytest.mark.parametrize("mode", ["epic", "eclinicalworks"])
def test_vendors_without_fhir_notifications_send_none(
    mode: str, env_of: Any, receiver: Receiver
) -> None:
    env = env_of(mode)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        env.server.notify(f"{receiver.origin}/hook", "s", resource="Patient/pt-00001")
    assert caught.value.response.status_code == 409


def test_generic_adapter_auth_methods(env_of: Any) -> None:
    env = env_of("generic")
    base = {"vendor": "generic", "base_url": env.server.base_url}
    specs = {
        "secret": ConnectionSpec(
            **base,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            auth_method=AuthMethod.CLIENT_SECRET_POST,
        ),
        "bearer": ConnectionSpec(
            **base, auth_method=AuthMethod.BEARER, client_secret=env.server.token()
        ),
        "none": ConnectionSpec(**base, auth_method=AuthMethod.NONE),
    }
    for name, spec in specs.items():
        with adapter_for(spec) as adapter:
            steps = {s.name: s for s in adapter.test_connection()}
        assert steps["capability_statement"].ok, name
        assert steps["patient_search"].ok == (name != "none"), name
    assert "401" in steps["patient_search"].detail  # the server's own refusal, shown


def test_bad_credentials_fail_the_token_step_with_vendor_text(env_of: Any) -> None:
    env = env_of("oracle_health")
    spec = ConnectionSpec(**{**env.spec.__dict__, "client_secret": "wrong"})
    with adapter_for(spec) as adapter:
        steps = {s.name: s for s in adapter.test_connection()}
    assert steps["discovery"].ok and steps["capability_statement"].ok
    assert not steps["token"].ok and "invalid_client" in steps["token"].detail
    assert "wrong" not in steps["token"].detail
