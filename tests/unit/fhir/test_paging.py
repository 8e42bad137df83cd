"""Bundle checks, entry selection, next links, origins, instants, NDJSON and manifests."""

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from holovitals_sync.fhir.bulk import BulkJob
from holovitals_sync.fhir.bulk_manifest import parse_manifest
from holovitals_sync.fhir.bundle import matches, next_link, parse_bundle
from holovitals_sync.fhir.errors import ForeignOriginError, MalformedResponse, TruncatedFile
from holovitals_sync.fhir.ids import check_id, check_type, fhir_instant
from holovitals_sync.fhir.ndjson import iter_ndjson
from holovitals_sync.fhir.origin import require_same_origin, same_origin
from holovitals_sync.fhir.writes import etag_version

PAGE = "https://ehr.example/fhir/Observation?_count=2"


def bundle(**extra: object) -> bytes:
    return orjson.dumps({"resourceType": "Bundle", "type": "searchset", **extra})


@pytest.mark.parametrize(
    "body",
    [
        b'{"resourceType":"Bundle","entry":[{"fullUrl":"http://',
        b"[]",
        orjson.dumps({"resourceType": "Patient"}),
        bundle(entry="garbage"),
        bundle(entry=[{"resource": "x"}]),
        bundle(link={"relation": "next"}),
    ],
)
def test_malformed_pages_name_the_url(body: bytes) -> None:
    with pytest.raises(MalformedResponse) as info:
        parse_bundle(body, url=PAGE)
    assert info.value.url == PAGE and PAGE in str(info.value)


def test_matches_selects_modes() -> None:
    page = orjson.loads(
        bundle(
            entry=[
                {
                    "resource": {"resourceType": "Observation", "id": "1"},
                    "search": {"mode": "match"},
                },
                {"resource": {"resourceType": "Observation", "id": "2"}},
                {"resource": {"resourceType": "Patient", "id": "p"}, "search": {"mode": "include"}},
                {
                    "resource": {"resourceType": "OperationOutcome", "issue": []},
                    "search": {"mode": "outcome"},
                },
                {"fullUrl": "no-resource"},
            ]
        )
    )
    assert [r["id"] for r in matches(page)] == ["1", "2"]
    assert [r["id"] for r in matches(page, include=True)] == ["1", "2", "p"]


def test_next_link_kept_exactly_or_resolved() -> None:
    opaque = "https://ehr.example/fhir?_getpages=abc&_getpagesoffset=2&_count=2"
    page = orjson.loads(
        bundle(link=[{"relation": "self", "url": PAGE}, {"relation": "next", "url": opaque}])
    )
    assert next_link(page, page_url=PAGE) == opaque
    relative = orjson.loads(bundle(link=[{"relation": "next", "url": "Observation?page=2"}]))
    assert next_link(relative, page_url=PAGE) == "https://ehr.example/fhir/Observation?page=2"
    assert next_link(orjson.loads(bundle()), page_url=PAGE) is None


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("https://ehr.example/other?x=1", True),
        ("https://ehr.example:443/fhir", True),
        ("https://EHR.example/fhir", True),
        ("http://ehr.example/fhir", False),
        ("https://ehr.example:8443/fhir", False),
        ("https://evil.example/fhir", False),
        ("https://ehr.example.evil.example/fhir", False),
    ],
)
def test_same_origin(url: str, same: bool) -> None:
    assert same_origin(url, "https://ehr.example/fhir") is same


def test_foreign_origin_error_names_no_path() -> None:
    with pytest.raises(ForeignOriginError) as info:
        require_same_origin(
            "https://evil.example/steal?token=1", "https://ehr.example/fhir", what="a next link"
        )
    assert "evil.example" in str(info.value) and "steal" not in str(info.value)


def test_fhir_instant() -> None:
    moment = datetime(2026, 11, 26, 5, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert fhir_instant(moment) == "2026-11-26T03:00:00.123Z"
    with pytest.raises(ValueError):
        fhir_instant(datetime(2026, 1, 1))


@pytest.mark.parametrize("bad", ["../x", "a/b", "x?y", "", "a" * 65])
def test_ids_refuse_path_tricks(bad: str) -> None:
    with pytest.raises(ValueError):
        check_id(bad)
    with pytest.raises(ValueError):
        check_type(bad or "patient")


def test_etag_version() -> None:
    assert etag_version('W/"3"') == "3"
    assert etag_version('"12"') == "12"
    assert etag_version(None) is None


def lines(n: int) -> bytes:
    return b"".join(
        orjson.dumps({"resourceType": "Patient", "id": str(i)}) + b"\n" for i in range(n)
    )


def test_ndjson_chunks_split_anywhere() -> None:
    data = lines(50) + b"\n"  # a blank line too
    for size in (1, 7, 64, 10_000):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        ids = [r["id"] for r in iter_ndjson(chunks, url="u")]
        assert ids == [str(i) for i in range(50)]


def test_ndjson_last_line_without_newline_is_fine() -> None:
    data = lines(3).rstrip(b"\n")
    assert len(list(iter_ndjson([data], url="u"))) == 3


def test_ndjson_truncated_last_line() -> None:
    data = lines(5)[:-10]
    seen = []
    with pytest.raises(TruncatedFile) as info:
        seen.extend(iter_ndjson([data], url="https://ehr.example/f.ndjson"))
    assert len(seen) == 4
    assert info.value.line_number == 5 and "f.ndjson" in str(info.value)


def test_ndjson_bad_line_in_the_middle() -> None:
    with pytest.raises(MalformedResponse) as info:
        list(iter_ndjson([lines(2) + b"{nope\n" + lines(1)], url="u"))
    assert "line 3" in str(info.value)
    assert not isinstance(info.value, TruncatedFile)


def test_manifest_parsing() -> None:
    body = orjson.dumps(
        {
            "transactionTime": "2026-11-26T03:00:00.000Z",
            "request": "https://e/$export",
            "requiresAccessToken": True,
            "output": [{"type": "Patient", "url": "https://e/f1", "count": 3}],
            "error": [{"type": "OperationOutcome", "url": "https://e/err"}],
        }
    )
    manifest = parse_manifest(body, url="https://e/status")
    assert manifest.requires_access_token and manifest.total_count == 3
    assert manifest.output[0].type == "Patient" and manifest.error[0].count is None
    with pytest.raises(MalformedResponse):
        parse_manifest(b'{"output": []}', url="https://e/status")
    with pytest.raises(MalformedResponse):
        parse_manifest(
            orjson.dumps({"transactionTime": "x", "output": [{"url": "u"}]}), url="https://e/status"
        )


def test_bulk_job_round_trips_through_json() -> None:
    job = BulkJob(
        status_url="https://e/s/1",
        kickoff_url="https://e/$export",
        requested_at=datetime.now(UTC).isoformat(),
        transaction_time=None,
    )
    again = BulkJob.from_dict(orjson.loads(orjson.dumps(job.to_dict())))
    assert again == job
