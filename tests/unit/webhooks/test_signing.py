"""Signature primitives and the SSRF guard, without servers."""

from __future__ import annotations

import time

import pytest

from holovitals_sync.models import SignatureAlgorithm, WebhookSubscription
from holovitals_sync.sandbox import notify
from holovitals_sync.services.webhooks import signing
from holovitals_sync.services.webhooks.delivery import backoff
from holovitals_sync.services.webhooks.events import InvalidEvent, check_event
from holovitals_sync.services.webhooks.ssrf import TargetRefused, check_target

SHA256, SHA512 = SignatureAlgorithm.HMAC_SHA256, SignatureAlgorithm.HMAC_SHA512


def test_our_header_matches_the_sandbox_and_checks_time():
    body = b'{"a": 1}'
    header = notify.sign(body, "s3cret", "holovitals")["X-HoloVitals-Signature"]
    signing.verify(body, header, "s3cret", algorithm=SHA256, tolerance=300)
    with pytest.raises(signing.SignatureError, match="bad signature"):
        signing.verify(body + b" ", header, "s3cret", algorithm=SHA256, tolerance=300)
    with pytest.raises(signing.SignatureError, match="stale"):
        signing.verify(
            body, header, "s3cret", algorithm=SHA256, tolerance=300, now=time.time() + 301
        )
    with pytest.raises(signing.SignatureError, match="malformed"):
        signing.verify(body, "v1=abc", "s3cret", algorithm=SHA256, tolerance=300)


def test_rotation_header_carries_both_and_either_verifies():
    header = signing.sign(b"x", ["new", "old"], algorithm=SHA512)
    assert header.count("v1=") == 2
    for secret in ("new", "old"):
        signing.verify(b"x", header, secret, algorithm=SHA512, tolerance=5)
    with pytest.raises(signing.SignatureError):
        signing.verify(b"x", header, "other", algorithm=SHA512, tolerance=5)
    with pytest.raises(signing.SignatureError):  # a sha512 digest is no sha256 signature
        signing.verify(b"x", header, "new", algorithm=SHA256, tolerance=5)


def test_plain_and_bearer():
    body = b"{}"
    signing.verify_plain(body, notify.sign(body, "k", "plain")["X-Signature"], "k")
    with pytest.raises(signing.SignatureError):
        signing.verify_plain(body, "00" * 32, "k")
    signing.verify_bearer("Bearer tok", "tok")
    for header in (None, "Basic tok", "Bearer nope"):
        with pytest.raises(signing.SignatureError):
            signing.verify_bearer(header, "tok")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.0.0.8/x",
        "http://169.254.169.254/",
        "http://[fe80::1]/x",
        "http://[::ffff:192.168.0.1]/x",
        "http://0.0.0.0/x",
        "file:///etc/passwd",
        "http://93.184.215.14:99999/",
    ],
)
def test_ssrf_refuses(url):
    with pytest.raises(TargetRefused):
        check_target(url, [])


@pytest.mark.parametrize(
    "url",
    [
        "http://100.64.0.1/x",
        "http://100.100.100.200/latest/meta-data",  # carrier-grade NAT
        "http://192.0.2.1/x",
        "http://198.18.0.1/x",  # documentation, benchmarking
        "http://[2002:a00:1::]/x",
        "http://[2002:7f00:1::1]/x",  # 6to4 of 10.0.0.1, 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/x",  # Teredo, client 10.0.0.1
        "http://[64:ff9b::a00:1]/x",
        "http://[64:ff9b::a9fe:a9fe]/x",  # NAT64 of 10/8, metadata
    ],
)
def test_ssrf_refuses_addresses_that_reach_inside_in_disguise(url):
    with pytest.raises(TargetRefused):
        check_target(url, [])


def test_ssrf_lets_a_public_address_through_a_nat64_gateway():
    check_target("http://[64:ff9b::5db8:d70e]/hook", [])  # 93.184.215.14


def test_ssrf_allow_list_by_ip_network_and_public_ip():
    check_target("http://93.184.215.14/hook", [])
    check_target("http://127.0.0.1:8080/hook", ["127.0.0.1"])
    check_target("http://10.2.3.4/hook", ["10.0.0.0/8"])
    with pytest.raises(TargetRefused):
        check_target("http://10.2.3.4/hook", ["10.9.0.0/16", "example.org"])


def test_events_carry_ids_only():
    assert check_event("patient.updated", {"resource_id": "pt-1", "job_id": None}) == {
        "resource_id": "pt-1"
    }
    with pytest.raises(InvalidEvent):
        check_event("patient.exploded", {})
    with pytest.raises(InvalidEvent):
        check_event("patient.updated", {"name": "Jane Doe"})
    with pytest.raises(InvalidEvent):
        check_event("patient.updated", {"resource_id": {"nested": "x"}})


def test_backoff_follows_schedule_with_jitter_then_doubles():
    sub = WebhookSubscription(name="s", url="u", secret_encrypted="x", backoff_seconds=[10, 60])
    assert 8 <= backoff(sub, 1, None) <= 12
    assert 48 <= backoff(sub, 2, None) <= 72
    assert 96 <= backoff(sub, 3, None) <= 144
    assert backoff(sub, 1, retry_after=100) == 100


def test_ssrf_check_pins_the_vetted_address():
    """The send goes to the address that was checked, with the name kept for Host/SNI."""
    pinned = check_target("http://localhost:8080/hook?x=1", ["localhost"])
    assert pinned.url in ("http://127.0.0.1:8080/hook?x=1", "http://[::1]:8080/hook?x=1")
    assert pinned.host == "localhost:8080"
    public = check_target("https://93.184.215.14/hook", [])
    assert public.url == "https://93.184.215.14/hook" and public.host == "93.184.215.14"
    six = check_target("http://[::1]:9/h", ["::1"])
    assert six.url == "http://[::1]:9/h" and six.host == "[::1]:9"
