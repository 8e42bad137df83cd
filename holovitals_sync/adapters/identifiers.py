"""Finding a patient by one of its identifiers (`Patient?identifier=system|value`).

HL7 v2 feeds name patients by MRN and assigning authority, not by FHIR id; this is the one
FHIR call that turns one into the other. It goes through the adapter so the vendor's extra
search parameters (athenahealth's `ah-practice`) and rate limits apply as to any search.
"""

from __future__ import annotations

from .base import EHRAdapter


def find_patients(
    adapter: EHRAdapter, *, system: str | None, value: str, merged_away: bool = False
) -> list[str]:
    """Ids of the EHR's patients carrying this identifier (usually one; none when unknown).

    A patient the EHR merged away may still carry the identifier with `link.replaced-by`;
    it is left out, so the survivor is found — unless `merged_away` asks for exactly those
    (the chart an A40 names in MRG).
    """
    token = f"{system}|{value}" if system else value
    params = [*adapter.search_extra(), ("identifier", token)]
    found = []
    for resource in adapter.client.search("Patient", params):
        if resource.get("resourceType") != "Patient" or not resource.get("id"):
            continue
        replaced = any(
            link.get("type") == "replaced-by"
            for link in resource.get("link") or ()
            if isinstance(link, dict)
        )
        if replaced == merged_away:
            found.append(str(resource["id"]))
    return sorted(set(found))
