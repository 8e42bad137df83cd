"""Bulk Data Access 2.0 `$export`: kick-off, polling, manifest, NDJSON download, cancel.

The job state (`BulkJob`) is a small serialisable dict, so a worker restarted mid-export
resumes polling the same status URL instead of starting a new export (which vendors such as
Oracle Health refuse with 429 while the first one runs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from holovitals_sync.fhir.bulk_manifest import Manifest, OutputFile, parse_manifest
from holovitals_sync.fhir.client import FhirClient
from holovitals_sync.fhir.errors import FhirError, MalformedResponse
from holovitals_sync.fhir.ids import check_id, fhir_instant
from holovitals_sync.fhir.ndjson import iter_ndjson
from holovitals_sync.fhir.origin import require_same_origin, same_origin
from holovitals_sync.fhir.retry import parse_retry_after

log = logging.getLogger(__name__)

Level = Literal["system", "patient", "group"]


@dataclass(slots=True)
class BulkJob:
    """Resumable state of one export: store `to_dict()` with the sync job's checkpoint."""

    status_url: str
    kickoff_url: str
    requested_at: str
    transaction_time: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The state as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BulkJob:
        """Rebuild the state saved with `to_dict`."""
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """One 202 answer while polling: `X-Progress` text and the wait the server asked for."""

    progress: str | None
    retry_after: float | None
    polls: int


class BulkExporter:
    """Runs `$export` on a `FhirClient`'s connection."""

    def __init__(
        self,
        client: FhirClient,
        *,
        poll_interval: float = 2.0,
        max_poll_interval: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """Create an exporter.

        Args:
            client: The connection's client (its token, pool and retries are used).
            poll_interval: Wait between polls when the server gives no `Retry-After`.
            max_poll_interval: Cap on any wait between polls (Oracle Health asks 600 s).
            sleep: Sleep function (tests).
        """
        self.client = client
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self._sleep = sleep

    def kick_off(
        self,
        *,
        level: Level = "system",
        group_id: str | None = None,
        types: Sequence[str] = (),
        since: datetime | None = None,
        output_format: str | None = None,
    ) -> BulkJob:
        """Start an export and return its resumable state.

        Args:
            level: "system" (`$export`), "patient" (`Patient/$export`), "group".
            group_id: The Group id for a group-level export.
            types: `_type` resource types (empty: all the server exports).
            since: `_since` (e.g. the previous manifest's transactionTime).
            output_format: `_outputFormat` (default NDJSON).

        Returns:
            The job, holding the status URL.
        """
        url = self._kickoff_url(level, group_id)
        params = {"_type": ",".join(types)} if types else {}
        if since is not None:
            params["_since"] = fhir_instant(since)
        if output_format:
            params["_outputFormat"] = output_format
        headers = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
        response = self.client.request_json("GET", url, params=params, headers=headers)
        status_url = response.headers.get("Content-Location")
        if response.status_code != 202 or not status_url:
            raise MalformedResponse(
                f"$export kick-off at {url} answered {response.status_code} without a status URL",
                url=url,
            )
        require_same_origin(status_url, self.client.config.base, what="the export status URL")
        log.info("bulk export started at %s; status %s", url, status_url)
        return BulkJob(
            status_url=status_url,
            kickoff_url=str(response.request.url),
            requested_at=datetime.now(UTC).isoformat(),
        )

    def _kickoff_url(self, level: Level, group_id: str | None) -> str:
        if level == "system":
            return self.client.url("$export")
        if level == "patient":
            return self.client.url("Patient", "$export")
        if level == "group" and group_id:
            return self.client.url("Group", check_id(group_id), "$export")
        raise ValueError("level must be system, patient, or group with a group_id")

    def poll_once(self, job: BulkJob, *, polls: int = 1) -> Manifest | ExportProgress:
        """Ask the status URL once.

        Returns:
            The manifest when complete (also stored on the job), else the progress.

        Raises:
            OperationOutcomeError: The export failed (the server's issues attached).
        """
        response = self.client.request_json(
            "GET", job.status_url, headers={"Accept": "application/json"}
        )
        if response.status_code == 202:
            return ExportProgress(
                progress=response.headers.get("X-Progress"),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                polls=polls,
            )
        manifest = parse_manifest(response.content, url=job.status_url)
        job.transaction_time = manifest.transaction_time
        return manifest

    def wait(
        self,
        job: BulkJob,
        *,
        on_progress: Callable[[ExportProgress], None] | None = None,
        timeout: float | None = None,
    ) -> Manifest:
        """Poll until the export completes, honouring `Retry-After` up to the cap.

        Args:
            job: The job (fresh or restored with `BulkJob.from_dict`).
            on_progress: Called with each 202 answer (X-Progress, wait asked).
            timeout: Give up after this many seconds (the job stays resumable).

        Returns:
            The completion manifest.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        polls = 0
        while True:
            polls += 1
            result = self.poll_once(job, polls=polls)
            if isinstance(result, Manifest):
                return result
            if on_progress is not None:
                on_progress(result)
            delay = min(result.retry_after or self._backoff(polls), self.max_poll_interval)
            if deadline is not None and time.monotonic() + delay > deadline:
                raise FhirError(f"export at {job.status_url} still running", url=job.status_url)
            self._sleep(delay)

    def _backoff(self, polls: int) -> float:
        return self.poll_interval * min(2 ** (polls - 1), 32)

    def iter_file(self, manifest: Manifest, output: OutputFile) -> Iterator[dict[str, Any]]:
        """Stream one output or error file line by line in constant memory.

        The token goes along only when the manifest requires it, and then only to the
        connection's own origin; a file elsewhere that needs the token is refused.

        Yields:
            Resources in file order.

        Raises:
            ForeignOriginError: The file needs the token but is on another origin.
            TruncatedFile: The file ended mid-line or the download broke off.
        """
        authenticated = manifest.requires_access_token
        if authenticated:
            require_same_origin(output.url, self.client.config.base, what="a manifest file")
        elif not same_origin(output.url, self.client.config.base):
            log.info("downloading an export file from another origin without the token")
        core = self.client.core
        request = core.build("GET", output.url, headers={"Accept": "application/fhir+ndjson"})
        response = core.send(request, authenticated=authenticated, stream=True)
        try:
            core.raise_for_fhir(response)
            yield from iter_ndjson(response.iter_bytes(), url=output.url)
        finally:
            response.close()

    def iter_resources(self, manifest: Manifest) -> Iterator[dict[str, Any]]:
        """Stream every output file of the manifest, one after the other."""
        for output in manifest.output:
            yield from self.iter_file(manifest, output)

    def iter_errors(self, manifest: Manifest) -> Iterator[dict[str, Any]]:
        """Stream the OperationOutcomes of the manifest's error files."""
        for output in manifest.error:
            yield from self.iter_file(manifest, output)

    def cancel(self, job: BulkJob) -> None:
        """Cancel the export (DELETE on the status URL); a 404 means it is already gone."""
        self.client.request_json("DELETE", job.status_url)
        log.info("bulk export %s cancelled", job.status_url)
