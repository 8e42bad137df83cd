"""Parts of a split full sync, fetched alone: a block of patients brings those patients'
records and no one else's, and a part resumes from its own checkpoint."""

from __future__ import annotations

from holovitals_sync.adapters import adapter_for

BOUND = ["Encounter", "Observation", "Condition"]


def _patients_of(resources: list[dict]) -> set[str]:
    refs = set()
    for res in resources:
        ref = (res.get("subject") or res.get("patient") or {}).get("reference", "")
        refs.add(ref.split("/", 1)[-1])
    return refs


def test_a_block_of_patients_brings_only_theirs(env_of) -> None:
    env = env_of("oracle_health")  # every search names one patient there
    with adapter_for(env.spec) as adapter:
        ids = adapter.patient_ids()
        block = ids[1:3]
        part = {"kind": "patients", "types": BOUND, "patients": block}
        pages = list(adapter.fetch_part(part))
    resources = [r for page in pages for r in page.resources]
    assert resources and _patients_of(resources) == set(block)
    expected = {
        f"{r['resourceType']}/{r['id']}"
        for t in BOUND
        for r in (rec.resource() for rec in env.server.state.store.candidates(t))
        if _patients_of([r]) <= set(block)
    }
    assert {f"{r['resourceType']}/{r['id']}" for r in resources} == expected


def test_a_part_resumes_from_its_checkpoint(env_of) -> None:
    env = env_of("oracle_health")
    with adapter_for(env.spec) as adapter:
        part = {"kind": "patients", "types": BOUND, "patients": adapter.patient_ids()[:3]}
        whole = [r["id"] for page in adapter.fetch_part(part) for r in page.resources]
        first = next(iter(adapter.fetch_part(part)))
        rest = [
            r["id"]
            for page in adapter.fetch_part(part, resume=first.checkpoint)
            for r in page.resources
        ]
    assert [r["id"] for r in first.resources] + rest == whole
