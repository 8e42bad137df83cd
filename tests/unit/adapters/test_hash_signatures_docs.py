"""Content hashes, athenahealth's hub signatures, and the generated support matrix."""

from __future__ import annotations

from pathlib import Path

from holovitals_sync.adapters import content_hash, hub_signature, verify_hub_signature
from holovitals_sync.adapters.docs import DOC_PATH, main, render

OBS = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "meta": {"versionId": "3", "lastUpdated": "2026-01-01T00:00:00.000Z"},
    "valueQuantity": {"value": 98.6, "unit": "F"},
}


def test_content_hash_ignores_bookkeeping_and_key_order() -> None:
    moved = {**OBS, "meta": {"versionId": "4", "lastUpdated": "2026-02-02T00:00:00.000Z"}}
    reordered = dict(reversed(list(OBS.items())))
    bare = {k: v for k, v in OBS.items() if k != "meta"}
    assert content_hash(OBS) == content_hash(moved) == content_hash(reordered)
    assert content_hash(OBS) == content_hash(bare)
    assert content_hash(OBS) != content_hash({**OBS, "status": "amended"})
    profiled = {**OBS, "meta": {**OBS["meta"], "profile": ["http://x"]}}
    assert content_hash(profiled) != content_hash(OBS)  # real meta content counts
    assert OBS["meta"]["versionId"] == "3"  # input untouched


def test_hub_signature_round_trip_and_rejections() -> None:
    body = b'{"resourceType":"Bundle"}'
    header = hub_signature(body, "s3cret")
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_hub_signature(body, header, "s3cret")
    assert verify_hub_signature(body, "SHA256=" + header[7:].upper(), "s3cret")
    assert not verify_hub_signature(body + b"\n", header, "s3cret")
    assert not verify_hub_signature(body, header, "other")
    assert not verify_hub_signature(body, None, "s3cret")
    assert not verify_hub_signature(body, "sha1=" + header[7:], "s3cret")
    assert not verify_hub_signature(body, header[7:], "s3cret")
    assert not verify_hub_signature(body, header, "")


def test_committed_support_matrix_is_current() -> None:
    assert DOC_PATH.read_text() == render(), (
        "docs/ehr-support.md is stale: run python -m holovitals_sync.adapters.docs"
    )
    assert main(["--check"]) == 0


def test_matrix_cites_sources_in_every_cell(tmp_path: Path) -> None:
    target = tmp_path / "m.md"
    assert main(["--check", "--path", str(target)]) == 1
    assert main(["--path", str(target)]) == 0 and main(["--check", "--path", str(target)]) == 0
    rows = [line for line in target.read_text().splitlines() if line.startswith("| ")][2:]
    assert len(rows) > 15
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")][1:]
        assert all(c.endswith("]") and "[" in c for c in cells), row
    assert "[E1]" in target.read_text() and "[W2]" in target.read_text()
