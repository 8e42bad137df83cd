"""SMART discovery and each way of getting a token, against the sandbox token endpoint."""

import pytest

from holovitals_sync.fhir import (
    AuthenticationError,
    ClientSecret,
    FhirClient,
    PrivateKeyJwt,
    StaticToken,
    generate_key_pair,
)
from holovitals_sync.fhir.discovery import discover_token_endpoint, token_endpoint_from_capabilities
from tests.integration.fhir.conftest import demo_credentials


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_private_key_jwt_with_discovery(make_client, sandbox, alg: str) -> None:
    pair = generate_key_pair(alg)
    client_id = f"hv-test-{alg.lower()}-{pair.kid[:8]}"
    sandbox.register_client(client_id, ["system/*.read"], jwks=pair.jwks)
    creds = PrivateKeyJwt(
        client_id=client_id, private_key_pem=pair.private_key_pem, scope="system/Patient.read"
    )
    client = make_client(creds)
    assert next(client.search("Patient"))["resourceType"] == "Patient"
    assert client.core.auth.token_url == sandbox.token_url  # found by discovery
    # A fresh assertion (new jti) for every token: a renewal is accepted too.
    sandbox.expire_tokens()
    assert next(client.search("Patient"))["resourceType"] == "Patient"
    assert client.core.auth.renewals == 2


def test_unregistered_key_is_refused_without_leaking_the_assertion(make_client, sandbox) -> None:
    pair = generate_key_pair("ES384")
    creds = PrivateKeyJwt(
        client_id="nobody",
        private_key_pem=pair.private_key_pem,
        scope="system/Patient.read",
        token_url=sandbox.token_url,
    )
    with pytest.raises(AuthenticationError) as info:
        make_client(creds).read("Patient", "x")
    assert "invalid_client" in str(info.value) and "eyJ" not in str(info.value)


def test_discovery_documents_name_the_token_endpoint(client: FhirClient, sandbox) -> None:
    assert discover_token_endpoint(client.core) == sandbox.token_url
    assert token_endpoint_from_capabilities(client.capabilities()) == sandbox.token_url


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_secret_methods(make_client, method: str) -> None:
    client = make_client(demo_credentials(method))
    assert next(client.search("Patient"))["resourceType"] == "Patient"


def test_wrong_secret_is_masked(make_client, sandbox) -> None:
    creds = ClientSecret(
        client_id="holovitals-demo",
        client_secret="wrong-secret-value",
        scope="system/*.read",
        method="client_secret_post",
        token_url=sandbox.token_url,
    )
    with pytest.raises(AuthenticationError) as info:
        next(make_client(creds).search("Patient"))
    assert info.value.status == 401 and "wrong-secret-value" not in str(info.value)


def test_static_token(make_client, sandbox) -> None:
    client = make_client(StaticToken(sandbox.token()))
    assert next(client.search("Patient"))["resourceType"] == "Patient"
