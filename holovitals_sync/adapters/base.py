"""`EHRAdapter`: one EHR connection seen through its vendor's documented behaviour.

Interface for the sync engine (keep it stable)::

    adapter_for(spec: ConnectionSpec) -> EHRAdapter
    EHRAdapter.capabilities -> Capabilities
    EHRAdapter.test_connection() -> list[StepResult]
    EHRAdapter.fetch_full(resource_types, *, resume=None) -> Iterator[FetchedPage]
    EHRAdapter.fetch_incremental(resource_types, *, cursor, resume=None) -> Iterator[...]
    EHRAdapter.fetch_patient(patient_id, *, resume=None) -> Iterator[FetchedPage]
    EHRAdapter.fetch_resource_type(resource_type, *, resume=None) -> Iterator[FetchedPage]
    EHRAdapter.check_write(resource) -> "create" | "update"   (raises WriteNotSupported)
    EHRAdapter.write(resource, *, remote_version=None) -> WriteOutcome
    EHRAdapter.check_delete(resource_type)                   (raises WriteNotSupported)
    EHRAdapter.delete(resource_type, resource_id, *, remote_version=None) -> None
    EHRAdapter.known_profile(vendor_params) -> VendorProfile | None   (no request sent)
    EHRAdapter.close() / context manager

Example::

    spec = ConnectionSpec(vendor="epic", base_url=..., client_id=..., private_key_pem=...,
                          vendor_params={"group_id": "..."})
    with adapter_for(spec) as adapter:              # registry.adapter_for
        adapter.capabilities                        # Capabilities (full/incremental/writes)
        adapter.test_connection()                   # list[StepResult]
        for page in adapter.fetch_full(types, resume=checkpoint):
            store(page.resources); commit(page.checkpoint, page.cursor)
        adapter.fetch_incremental(types, cursor=cursor, resume=None)   # Iterator[FetchedPage]
        adapter.fetch_patient(patient_id, resume=None)                 # Iterator[FetchedPage]
        adapter.fetch_resource_type(resource_type, resume=None)        # Iterator[FetchedPage]
        adapter.write(resource, remote_version="3")                    # WriteOutcome
    content_hash(resource)                          # hashing.content_hash

- Pages carry a `checkpoint` (pass back as `resume` with the same arguments) and, when a
  type completes, its new `cursor` entry; commit both only with the page's records.
- Incremental fetches on vendors without `_lastUpdated` re-query (or Bulk `_since`) and may
  return unchanged records: compare `content_hash` with the stored one and write nothing.
- `write` and `delete` raise `WriteNotSupported` before any request when the vendor takes no
  such write, and `RemoteChanged` (a `PreconditionFailed`) when the EHR answered 412, or 409
  where the vendor uses it (Oracle Health). A delete of what the EHR no longer has raises
  `ResourceNotFound` (404/410). Other failures are the FHIR client's typed errors.
- The adapter never touches the database; secrets arrive decrypted in the spec.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from holovitals_sync.adapters import checks, connect
from holovitals_sync.adapters.errors import ConfigurationError, RemoteChanged, WriteNotSupported
from holovitals_sync.adapters.fetch import Fetcher
from holovitals_sync.adapters.parts import Part, Split, part_tasks, plan_split
from holovitals_sync.adapters.plan import (
    Task,
    full_tasks,
    incremental_method,
    incremental_tasks,
    search_tasks,
)
from holovitals_sync.adapters.profile import VendorProfile, WriteOp
from holovitals_sync.adapters.types import (
    Capabilities,
    ConnectionSpec,
    FetchedPage,
    Resource,
    StepResult,
    WriteOutcome,
)
from holovitals_sync.fhir.client import FhirClient
from holovitals_sync.fhir.errors import FhirError, PreconditionFailed

log = logging.getLogger(__name__)


class EHRAdapter:
    """Base adapter: every behaviour comes from `profile`; vendors override hooks only."""

    PROFILE: ClassVar[VendorProfile]

    def __init__(self, spec: ConnectionSpec):
        """Bind the adapter to a connection (no request is sent yet).

        Args:
            spec: The connection, secrets decrypted by the caller.
        """
        self.spec = spec
        self._client: FhirClient | None = None
        self._configured: VendorProfile | None = None

    # ---- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> EHRAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def profile(self) -> VendorProfile:
        """The profile in force for this connection: the vendor's (or the server's), with
        the connection's own choices over it (`connect.as_configured`)."""
        if self._configured is None:
            self._configured = connect.as_configured(self.vendor_profile(), self.spec)
        return self._configured

    def hold_types(self, types: Sequence[str]) -> bool:
        """Read `types` (a run's first list, in its order), whatever the connection's list
        says now; False, changing nothing, when the vendor or server no longer offers one
        of them.

        A resumed run's checkpoint counts positions in the list its first attempt read.
        """
        offered = set(self.vendor_profile().resource_types)
        if not all(t in offered for t in types):
            return False
        self._configured = replace(self.profile, resource_types=tuple(types))
        return True

    def vendor_profile(self) -> VendorProfile:
        """The vendor's profile, before the connection's own choices."""
        return self.PROFILE

    @classmethod
    def known_profile(cls, vendor_params: dict[str, Any]) -> VendorProfile | None:
        """The profile as far as it is known without asking the EHR (None: the server
        declares it, as generic servers do in their CapabilityStatement).

        Lets the API refuse a change the vendor can never take before anything is stored.
        """
        del vendor_params
        return cls.PROFILE

    @property
    def client(self) -> FhirClient:
        """The FHIR client, created on first use."""
        if self._client is None:
            self._client = connect.build_client(self.spec, self.profile)
        return self._client

    # ---- what the engine plans with ----------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        """Full and incremental methods, writable types, notification style."""
        p = self.profile
        return Capabilities(
            full_sync=p.full_sync_method,
            incremental={t: incremental_method(p, t) for t in p.resource_types},
            writable={t: sorted(ops) for t, ops in sorted(p.writes.items())},
            versioning=p.versioning,
            notification=p.notification,
            requests_per_minute=p.requests_per_minute,
        )

    def test_connection(self) -> list[StepResult]:
        """Discovery, token, CapabilityStatement, one Patient search: a verdict per step."""
        try:
            client, extra, profile = self.client, self.search_extra(), self.profile
        except ConfigurationError as exc:
            return [StepResult("configuration", False, str(exc))]
        except ValueError:  # never echo key material
            return [StepResult("configuration", False, "the private key could not be loaded")]
        except FhirError as exc:  # the generic adapter reads the server's statement first
            return [StepResult("discovery", False, str(exc))]
        steps = checks.run_checks(client, profile, extra, self.spec.vendor_params)
        if self.spec.resource_types:
            steps.append(self._chosen_types())
        return steps

    def _chosen_types(self) -> StepResult:
        """Whether the server offers every type the connection was told to sync."""
        try:
            offered = self.vendor_profile().resource_types
        except FhirError as exc:
            return StepResult("resource_types", False, checks.describe(exc))
        missing = [t for t in self.spec.resource_types if t not in offered]
        if missing:
            return StepResult("resource_types", False,
                              f"the server does not offer {', '.join(missing)}")  # fmt: skip
        return StepResult("resource_types", True,
                          f"syncs {len(self.spec.resource_types)} of the {len(offered)} "
                          "types the server offers")  # fmt: skip

    # ---- fetching --------------------------------------------------------------------
    def fetch_full(
        self, resource_types: Sequence[str], *, resume: dict[str, Any] | None = None
    ) -> Iterator[FetchedPage]:
        """Every resource of the given types: `$export` where offered, paged search else.

        Args:
            resource_types: Types to read (each must be in the profile's `resource_types`).
            resume: A page's `checkpoint` from an earlier call with the same types.

        Yields:
            Pages; the last page of each type carries its `cursor` entry.

        Raises:
            ConfigurationError: A type the vendor does not expose, or a missing setting.
            FhirError: The client's typed errors (auth, 4xx with the vendor's issues, ...).
        """
        return self._run(full_tasks(self.profile, self._types(resource_types)), resume)

    def fetch_incremental(
        self,
        resource_types: Sequence[str],
        *,
        cursor: dict[str, str] | None,
        resume: dict[str, Any] | None = None,
    ) -> Iterator[FetchedPage]:
        """Changes since `cursor`; unchanged records may come back where the vendor lacks
        `_lastUpdated` (per-patient re-query): drop them by `content_hash`.

        Args:
            resource_types: Types to read.
            cursor: Type -> instant, merged from earlier pages' `cursor`; types missing
                from it are read in full.
            resume: A page's `checkpoint` from an earlier call with the same arguments.

        Yields:
            Pages, as `fetch_full`.
        """
        tasks = incremental_tasks(self.profile, self._types(resource_types), cursor or {})
        return self._run(tasks, resume)

    def fetch_patient(
        self, patient_id: str, *, resume: dict[str, Any] | None = None
    ) -> Iterator[FetchedPage]:
        """Everything of one patient (`$everything` where offered, else a search per type).

        Args:
            patient_id: The EHR's Patient id.
            resume: A page's `checkpoint` from an earlier call.

        Yields:
            Pages.
        """
        task = Task("patients", self.profile.resource_types, patient_ids=(patient_id,))
        return self._run([task], resume)

    def fetch_resource_type(
        self, resource_type: str, *, resume: dict[str, Any] | None = None
    ) -> Iterator[FetchedPage]:
        """Every resource of one type by paged search (per patient where required).

        Args:
            resource_type: e.g. "Observation".
            resume: A page's `checkpoint` from an earlier call.

        Yields:
            Pages.
        """
        return self._run(search_tasks(self.profile, self._types([resource_type])), resume)

    def split_full(
        self,
        resource_types: Sequence[str],
        *,
        min_resources: int,
        patient_block: int,
        workers: int = 1,
    ) -> Split:
        """How to run a full sync: in parts (children on several workers), or as one job.

        An export is started here to see its files; the unsplit run resumes it (`resume`).
        """
        return plan_split(
            self,
            self._types(resource_types),
            min_resources=min_resources,
            patient_block=patient_block,
            workers=workers,
        )

    def fetch_part(
        self, part: Part, *, resume: dict[str, Any] | None = None
    ) -> Iterator[FetchedPage]:
        """One part of a split full sync (from `split_full`), resumable like the whole."""
        tasks, start = part_tasks(self, part)
        return self._run(tasks, resume or start)

    def fetch_ids(
        self, resource_types: Sequence[str], *, resume: dict[str, Any] | None = None
    ) -> Iterator[FetchedPage]:
        """The ids of every resource of these types, by paged search (`_elements=id`).

        For the id sweep: a page of ids costs the EHR far less than a page of resources,
        and comparing them with what is stored finds the deletes no EHR announced. Servers
        that ignore `_elements` send whole resources, of which only the ids are used.

        Args:
            resource_types: Types to list.
            resume: A page's `checkpoint` from an earlier call.

        Yields:
            Pages whose resources carry at least `resourceType` and `id`.
        """
        tasks = search_tasks(self.profile, self._types(resource_types))
        return self._run(tasks, resume, extra=[("_elements", "id")])

    def _types(self, resource_types: Sequence[str]) -> list[str]:
        """The types to read, Patient first (the rest in the order given).

        Validity no longer depends on it (references are settled when the run ends), but a
        run stopped half-way then holds the patients its other records point to.
        """
        unknown = [t for t in resource_types if t not in self.profile.resource_types]
        if unknown:
            raise ConfigurationError(
                f"{self.profile.display_name} does not expose {', '.join(unknown)} over FHIR"
            )
        return sorted(resource_types, key=lambda rtype: rtype != "Patient")

    def _run(
        self,
        tasks: list[Task],
        resume: dict[str, Any] | None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Iterator[FetchedPage]:
        fetcher = Fetcher(
            self.client,
            self.profile,
            page_size=connect.page_size(self.spec, self.profile),
            extra_params=[*self.search_extra(), *(extra or [])],
            patient_ids=self.patient_ids,
            export_target=self.export_target,
        )
        fetcher.stall_seconds = self.spec.stall_seconds
        fetcher.streams = self.spec.streams
        return fetcher.run(tasks, resume)

    # ---- hooks vendors may override -----------------------------------------------------
    def search_extra(self) -> list[tuple[str, str]]:
        """Parameters every search carries (athenahealth's `ah-practice`)."""
        return [
            (k, connect.render(v, self.spec.vendor_params, what=f"the {k} parameter"))
            for k, v in self.profile.search_params.items()
        ]

    def patient_ids(self) -> list[str]:
        """Patients to iterate: a Patient search, or the Group where searches need an id."""
        if self.profile.required_search_params.get("Patient"):
            return self._group_members()
        params = [*self.search_extra(), ("_count", str(connect.page_size(self.spec, self.profile)))]
        return sorted({str(r["id"]) for r in self.client.search("Patient", params)})

    def _group_members(self) -> list[str]:
        group_id = connect.render(
            self.profile.export_group_template, self.spec.vendor_params, what="listing patients"
        )
        group = self.client.read("Group", group_id)
        refs = (m.get("entity", {}).get("reference", "") for m in group.get("member") or [])
        return sorted(r.split("/", 1)[1] for r in refs if r.startswith("Patient/"))

    def export_target(self) -> tuple[str, str | None]:
        """(level, group id) of `$export`: the profile's first level."""
        if not self.profile.export_levels:
            raise ConfigurationError(f"{self.profile.display_name} offers no $export")
        level = self.profile.export_levels[0]
        if level != "group":
            return level, None
        group = connect.render(
            self.profile.export_group_template, self.spec.vendor_params, what="group export"
        )
        return "group", group

    # ---- writing ---------------------------------------------------------------------
    def check_write(self, resource: Resource) -> str:
        """The operation a write would be ("create" or "update"), or raise why not.

        Raises:
            WriteNotSupported: The vendor takes no such write over FHIR (no request sent).
        """
        if not isinstance(resource, dict) or not resource.get("resourceType"):
            raise ValueError("resource must be a dict with a resourceType")
        rtype = str(resource["resourceType"])
        op: WriteOp = "update" if resource.get("id") else "create"
        refusal = self.profile.write_refusal(rtype, op)
        if refusal is not None:
            raise WriteNotSupported(refusal, resource_type=rtype, operation=op)
        return op

    def check_delete(self, resource_type: str) -> None:
        """Raise why not when the vendor takes no FHIR delete of the type.

        Raises:
            WriteNotSupported: The vendor takes no delete of this type (no request sent).
        """
        refusal = self.profile.write_refusal(resource_type, "delete")
        if refusal is not None:
            raise WriteNotSupported(refusal, resource_type=resource_type, operation="delete")

    def delete(
        self, resource_type: str, resource_id: str, *, remote_version: str | None = None
    ) -> None:
        """Delete one resource on the EHR.

        Args:
            resource_type: e.g. "Observation".
            resource_id: The EHR's id.
            remote_version: The EHR version the delete was decided on; sent as `If-Match`
                only where the vendor versions writes.

        Raises:
            WriteNotSupported: Before any request, when the vendor takes no such delete.
            RemoteChanged: The EHR moved on (412, or 409 on Oracle Health).
            ResourceNotFound: The EHR has no such resource (404, or 410 Gone).
        """
        self.check_delete(resource_type)
        version = remote_version if self.profile.versioning != "none" else None
        try:
            self.client.delete(resource_type, resource_id, if_match_version=version)
        except PreconditionFailed as exc:
            raise RemoteChanged(
                str(exc), status=exc.status, url=exc.url, issues=exc.issues
            ) from exc

    def write(self, resource: Resource, *, remote_version: str | None = None) -> WriteOutcome:
        """Create (no id) or update (with id) one resource on the EHR.

        Args:
            resource: The resource to send.
            remote_version: The EHR version the local change is based on; sent as
                `If-Match` only where the vendor versions writes.

        Raises:
            WriteNotSupported: Before any request, when the vendor takes no such write.
            RemoteChanged: The EHR moved on (412, or 409 on Oracle Health).
        """
        op = self.check_write(resource)
        versioned = self.profile.versioning != "none"
        try:
            if op == "create":
                result = self.client.create(resource)
            else:
                version = remote_version if versioned else None
                result = self.client.update(resource, if_match_version=version)
        except PreconditionFailed as exc:
            raise RemoteChanged(
                str(exc), status=exc.status, url=exc.url, issues=exc.issues
            ) from exc
        return WriteOutcome(
            status=result.status,
            created=result.created,
            resource_id=result.resource_id,
            version_id=result.version_id,
            resource=result.resource,
        )
