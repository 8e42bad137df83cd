"""Running a fetch plan page by page, with a checkpoint after each page.

A checkpoint is `{"task": k, "state": {...}, "recent": [...]}`: the task index in the plan,
that task's own small state (next link, patient and type index, export job and file
position) and, where the vendor repeats ids across pages, the ids of the last page so a
resumed run still drops a repeat.

A search the vendor refuses for too many matches (`profile.too_many_error`) is re-run in
date windows on `profile.split_by_date[type]`, each window halved until it fits; the
search's state then also holds `split` (the windows still to read, current first) and
`seen` (ids delivered by the split so far), so a resumed run neither loses nor repeats.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from holovitals_sync.adapters import windows
from holovitals_sync.adapters.plan import Task
from holovitals_sync.adapters.profile import VendorProfile
from holovitals_sync.adapters.types import FetchedPage, Resource
from holovitals_sync.fhir.bulk import BulkExporter, BulkJob
from holovitals_sync.fhir.bundle import matches
from holovitals_sync.fhir.client import FhirClient
from holovitals_sync.fhir.errors import EndlessPaging, OperationOutcomeError, ResourceNotFound
from holovitals_sync.fhir.ids import fhir_instant

log = logging.getLogger(__name__)

# Re-read records sharing the cursor instant or written under clock skew; the caller's
# content hash drops the ones it already has.
LOOKBACK = timedelta(seconds=60)

# The widest date window of a split search; halving stops at one second.
SPLIT_FROM, SPLIT_TO = "1900-01-01T00:00:00Z", "2100-01-01T00:00:00Z"
# The last "window" of a split: records without the date, which no date range matches.
UNDATED = ["", ""]
MIN_WINDOW = timedelta(seconds=1)


class StepState(TypedDict, total=False):
    """Where one task resumes: stored in job checkpoints as JSON, so the keys (short ones
    included) stay as running jobs saved them; each task kind uses some of them."""

    next: str  # searches: the saved next link
    started: str  # the server's clock at the first page: the task's high-water mark
    decided: list[str]  # history: ids whose latest entry was already read
    split: list[list[str]]  # a split search: the date windows still to read, current first
    seen: list[str]  # a split search: "Type/id" delivered by its windows so far
    p: int  # patients: index of the current patient in the (sorted) id list
    pid: str  # patients: that patient's id, to find it again in a grown list
    u: int  # patients: index of the current unit (a type, or `$everything`)
    job: dict[str, Any]  # exports: the kick-off's status URL and times (BulkJob.to_dict)
    file: int  # exports: index of the current output (then `deleted`) file
    line: int  # exports: lines of that file already delivered
    deleted: bool  # exports: this step reads the `deleted` files (DELETES)


# (resources, state to resume after this page or None when the task is done, cursor, total)
Step = tuple[list[Resource], StepState | None, dict[str, str], int | None]
# A checkpoint key marking a step of an export's `deleted` files.
DELETES = "deleted"
BUNDLES_PER_STEP = 10
# Markers a history task yields in place of resources: (type, id) deleted at the EHR.
Deleted = tuple[str, str]


def now_instant() -> str:
    """The current UTC time as a FHIR instant."""
    return fhir_instant(datetime.now(UTC))


def lookback(instant: str) -> str:
    """`gt` bound for `_lastUpdated`: the cursor minus the look-back window."""
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return "gt" + fhir_instant(moment - LOOKBACK)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _halves(lo: str, hi: str) -> list[list[str]] | None:
    """[lo, mid), [mid, hi) on whole seconds, or None when the window cannot shrink."""
    start, end = _instant(lo), _instant(hi)
    if end - start <= MIN_WINDOW:
        return None
    mid = fhir_instant((start + (end - start) / 2).replace(microsecond=0))
    return [[lo, mid], [mid, hi]] if lo < mid < hi else None


class StallWatch:
    """Fails a fetch whose pages have brought nothing for `seconds`.

    Each request has its own deadline, but a server can answer every one in time with an
    empty page and another next link: that is no progress, however long it goes on.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last = time.monotonic()

    def page(self, progressed: bool) -> None:
        now = time.monotonic()
        if progressed:
            self.last = now
        elif now - self.last > self.seconds:
            raise EndlessPaging(
                f"no resources from the EHR for {self.seconds:g} s while its "
                "pages kept coming (HOLOVITALS_SYNC_STALL_SECONDS)"
            )


# A `_count` the server refuses is halved down to this before the refusal is believed to
# be about something else.
PAGE_FLOOR = 100


def _asks_too_much(exc: OperationOutcomeError) -> bool:
    """A refusal that names the page size (413 always): halving `_count` may cure it."""
    if exc.status == 413:
        return True
    if exc.status not in (400, 422):
        return False
    words = " ".join(f"{i.diagnostics or ''} {i.code or ''}" for i in exc.issues).lower()
    return "_count" in words or "count" in words or "page size" in words


def _with_count(params: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    return [(k, str(count) if k == "_count" else v) for k, v in params]


def _count_of(params: list[tuple[str, str]]) -> int | None:
    for key, value in params:
        if key == "_count" and value.isdecimal():
            return int(value)
    return None


class PageSizer:
    """The page size of one run: what was asked, lowered to what the server honours.

    Many servers cost per page (each re-runs the query), so a run asks for large pages; a
    server that quietly serves fewer than asked while more follow (it caps `_count`), or
    refuses the size outright, is taken at its word for the rest of the run, and the size
    it honours is handed to the caller (`learned`) to remember for the connection.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.learned: int | None = None

    def lower(self, size: int) -> None:
        if 0 < size < self.size:
            self.size = self.learned = size
            log.info("the EHR honours pages of %d; asking for that from now on", size)

    def first_page(self, asked: int | None, bundle: Resource, following: str | None) -> None:
        """Notice a silent cap: fewer entries than asked on a page that is not the last."""
        if asked is None or following is None:
            return
        served = sum(
            1
            for e in bundle.get("entry") or []
            if isinstance(e, dict) and (e.get("search") or {}).get("mode", "match") == "match"
        )
        if 0 < served < asked:
            self.lower(served)


class Fetcher:
    """Runs tasks on one client; the adapter supplies the vendor knowledge."""

    stall_seconds: float = 900.0
    streams: int = 1  # tasks paged at once (adapters.streams)

    def __init__(
        self,
        client: FhirClient,
        profile: VendorProfile,
        *,
        page_size: int,
        extra_params: list[tuple[str, str]],
        patient_ids: Callable[[], list[str]],
        export_target: Callable[[], tuple[str, str | None]],
    ):
        """Bind the runner to a client and the adapter's hooks.

        Args:
            client: The connection's FHIR client.
            profile: The vendor profile in force.
            page_size: `_count` of searches and page size of export NDJSON.
            extra_params: Parameters every search carries.
            patient_ids: Lists the patients to iterate (sorted, stable).
            export_target: (level, group id) of `$export`.
        """
        self.client = client
        self.profile = profile
        self.sizer = PageSizer(page_size)
        self.extra_params = extra_params
        self.patient_ids = patient_ids
        self.export_target = export_target

    @property
    def page_size(self) -> int:
        """`_count` to ask for now (lowered once the server is seen to honour less)."""
        return self.sizer.size

    # ---- the runner ------------------------------------------------------------------
    def run(self, tasks: list[Task], resume: dict[str, Any] | None) -> Iterator[FetchedPage]:
        """Yield the pages of every task from the resume point on (several at once when
        the connection allows more than one stream)."""
        resume = resume or {}
        if "streams" in resume or (self.streams > 1 and len(tasks) > 1 and "task" not in resume):
            from holovitals_sync.adapters.streams import run_parallel

            yield from run_parallel(self, tasks, resume, max(1, self.streams))
            return
        state: StepState = resume.get("state") or StepState()
        seen: set[str] = set(resume.get("recent") or [])
        stall = StallWatch(self.stall_seconds)
        for k in range(int(resume.get("task", 0)), len(tasks)):
            for resources, after, cursor, total in self._steps(tasks[k], state):
                stall.page(bool(resources) or after is None)
                checkpoint: dict[str, Any] = (
                    {"task": k, "state": after}
                    if after is not None
                    else {"task": k + 1, "state": {}}
                )
                if marks_deletes(tasks[k], after):  # deletes, not resources
                    yield FetchedPage(
                        [], checkpoint, cursor, total, deleted=[tuple(r) for r in resources]
                    )
                    continue
                kept = self._dedupe(resources, seen)
                if self.profile.dedupe_ids:
                    checkpoint["recent"] = [_key(r) for r in resources]
                yield FetchedPage(
                    kept, checkpoint, cursor, total, page_size_learned=self.sizer.learned
                )
            state = {}

    def _dedupe(self, resources: list[Resource], seen: set[str]) -> list[Resource]:
        if not self.profile.dedupe_ids:
            return resources
        kept = []
        for res in resources:
            key = _key(res)
            if key not in seen:
                seen.add(key)
                kept.append(res)
        if len(kept) < len(resources):
            log.info("dropped %d id(s) repeated across pages", len(resources) - len(kept))
        return kept

    def _steps(self, task: Task, state: StepState) -> Iterator[Step]:
        if task.kind == "search":
            rtype = task.types[0]
            yield from self.unit_steps(
                self.client.url(rtype), self._params(task, rtype), state, task.types, rtype
            )
        elif task.kind == "patients":
            yield from self.patient_steps(task, state)
        elif task.kind == "history":
            yield from self.history_steps(task, state)
        else:
            yield from self.export_steps(task, state)

    # ---- deletes from a type's history -------------------------------------------------
    def history_steps(self, task: Task, state: StepState) -> Iterator[Step]:
        """The type's `_history` since the cursor, as (type, id) of what it deleted.

        History runs newest first, so an id's first entry is its latest: a resource deleted
        and then created again is not a delete. The ids already decided travel in the
        state, so a resumed run decides them the same way.
        """
        rtype = task.types[0]
        since = task.since_of(rtype)
        params = (
            [("_since", lookback(since)[2:]), ("_count", str(self.page_size))]
            if since
            else [("_count", str(self.page_size))]
        )
        decided: set[str] = set(state.get("decided") or [])
        for bundle, following in self._bundles(
            self.client.url(rtype, "_history"), params, state.get("next")
        ):
            deleted: list[Any] = []
            for entry in bundle.get("entry") or []:
                rid = _history_id(entry, rtype)
                if rid is None or rid in decided:
                    continue
                decided.add(rid)
                if _is_delete(entry):
                    deleted.append([rtype, rid])
            if following:
                yield deleted, {"next": following, "decided": sorted(decided)}, {}, None
            else:
                yield deleted, None, {}, None

    # ---- search ----------------------------------------------------------------------
    def _params(self, task: Task, rtype: str, patient: str | None = None) -> list[tuple[str, str]]:
        params = list(self.extra_params)
        if patient is not None:
            params.append(("_id" if rtype == "Patient" else "patient", patient))
        since = task.since_of(rtype)
        if since:
            params.append(("_lastUpdated", lookback(since)))
        if task.window is not None:
            params += windows.params_of(task.window)
        params.append(("_count", str(self.page_size)))
        return params

    def search_steps(
        self, url: str, params: list[tuple[str, str]], state: StepState, types: tuple[str, ...]
    ) -> Iterator[Step]:
        """Pages of one search (or resume at its saved next link); cursor when done."""
        started = state.get("started")
        for bundle, following in self._bundles(url, params, state.get("next")):
            # The server's clock at the first page is the safe high-water mark.
            started = started or (bundle.get("meta") or {}).get("lastUpdated") or now_instant()
            resources = [r for r in matches(bundle) if r.get("resourceType") in types]
            total = bundle.get("total") if isinstance(bundle.get("total"), int) else None
            if following:
                yield resources, {"next": following, "started": started}, {}, total
            else:
                yield resources, None, {t: started for t in types}, total

    # ---- splitting a search that matches too many -----------------------------------------
    def too_many(self, exc: OperationOutcomeError) -> bool:
        """True when the error is the vendor's "too many matches" refusal."""
        marker = self.profile.too_many_error
        if marker is None or exc.status != 400:
            return False
        return any(i.code == "too-costly" or marker in (i.diagnostics or "") for i in exc.issues)

    def modifier_refused(self, exc: OperationOutcomeError) -> bool:
        """A 400 that is not "too many": the server does not take the `:missing` modifier."""
        return exc.status == 400 and not self.too_many(exc)

    def unit_steps(
        self,
        url: str,
        params: list[tuple[str, str]],
        state: StepState,
        types: tuple[str, ...],
        rtype: str | None,
    ) -> Iterator[Step]:
        """One search, split into date windows when the vendor refuses it as too large."""
        date_param = self.profile.split_by_date.get(rtype or "")
        if date_param is None or self.profile.too_many_error is None:
            yield from self.search_steps(url, params, state, types)
            return
        if not state.get("split"):
            delivered = False
            try:
                for step in self.search_steps(url, params, state, types):
                    delivered = True
                    yield step
                return
            except OperationOutcomeError as exc:
                if delivered or not self.too_many(exc):
                    raise
                log.info("%s search matched too many; splitting by %s", rtype, date_param)
            state = {"split": [[SPLIT_FROM, SPLIT_TO], UNDATED]}
        yield from self.split_steps(url, params, state, types, date_param)

    def split_steps(
        self,
        url: str,
        params: list[tuple[str, str]],
        state: StepState,
        types: tuple[str, ...],
        date_param: str,
    ) -> Iterator[Step]:
        """The windows in `state["split"]` in order; a refused window is halved in place."""
        windows: list[list[str]] = [list(w) for w in state["split"]]
        seen: set[str] = set(state.get("seen") or [])
        started = state.get("started") or now_instant()
        inner = StepState(next=state["next"]) if state.get("next") else StepState()
        while windows:
            lo, hi = windows[0]
            if [lo, hi] == UNDATED:
                part = [*params, (f"{date_param}:missing", "true")]
            else:
                part = [*params, (date_param, f"ge{lo}"), (date_param, f"lt{hi}")]
            delivered = False
            try:
                for resources, after, _, total in self.search_steps(url, part, inner, types):
                    delivered = True
                    kept = [r for r in resources if _key(r) not in seen]
                    seen.update(_key(r) for r in kept)
                    if after is None:
                        windows = windows[1:]
                    if after is None and not windows:
                        yield kept, None, {t: started for t in types}, None
                        return
                    saved = StepState(
                        split=[list(w) for w in windows], seen=sorted(seen), started=started
                    )
                    if after is not None:
                        saved["next"] = after["next"]
                    yield kept, saved, {}, total
            except OperationOutcomeError as exc:
                if [lo, hi] == UNDATED and not delivered and self.modifier_refused(exc):
                    # A server without `:missing` cannot be asked for undated records;
                    # the bulk export (full sync) still brings them.
                    log.warning(
                        "%s:missing refused; undated records come with a full sync", date_param
                    )
                    windows = windows[1:]
                    if not windows:
                        yield [], None, {t: started for t in types}, None
                        return
                    continue
                halves = None if delivered or inner or not lo else _halves(lo, hi)
                if halves is None or not self.too_many(exc):
                    raise
                windows[0:1] = halves
            inner = StepState()

    def _bundles(
        self, url: str, params: list[tuple[str, str]], resume_at: str | None
    ) -> Iterator[tuple[Resource, str | None]]:
        """Pages with their next link, resolved by the client (the one parser of them)."""
        if resume_at is None:
            yield from self._fresh(url, params)
            return
        pages = self.client.paged(resume_at)
        try:
            first = next(pages)
        except ResourceNotFound:
            # The server dropped the paging snapshot (410): start the search again; records
            # already stored hash the same, so the caller writes nothing twice.
            log.info("saved next link expired; restarting the search")
            yield from self._fresh(url, params)
            return
        yield first
        yield from pages

    def _fresh(
        self, url: str, params: list[tuple[str, str]]
    ) -> Iterator[tuple[Resource, str | None]]:
        """A search from its first page, at the run's page size; a refusal of that size
        halves it (down to PAGE_FLOOR), and a quietly capped first page lowers it."""
        while True:
            asked = _count_of(params)
            if asked is not None and asked > self.page_size:
                params, asked = _with_count(params, self.page_size), self.page_size
            pages = self.client.paged(url, params)
            try:
                bundle, following = next(pages)
            except StopIteration:
                return
            except OperationOutcomeError as exc:
                if (
                    asked is None
                    or asked <= PAGE_FLOOR
                    or self.too_many(exc)
                    or not _asks_too_much(exc)
                ):
                    raise
                self.sizer.lower(max(PAGE_FLOOR, asked // 2))
                continue
            self.sizer.first_page(asked, bundle, following)
            yield bundle, following
            yield from pages
            return

    def _patient_units(
        self, task: Task, pid: str
    ) -> list[tuple[str, list[tuple[str, str]], str | None]]:
        if self.profile.patient_everything and not task.since:
            url = self.client.url("Patient", pid, "$everything")
            return [(url, [("_count", str(self.page_size))], None)]
        return [(self.client.url(t), self._params(task, t, pid), t) for t in task.types]

    def patient_steps(self, task: Task, state: StepState) -> Iterator[Step]:
        """Each patient x each type (or `$everything`), resumable at (patient, unit, page)."""
        ids = list(task.patient_ids) if task.patient_ids is not None else self.patient_ids()
        started = state.get("started") or now_instant()
        p0, u0 = int(state.get("p", 0)), int(state.get("u", 0))
        if state.get("pid") in ids:  # the list may have grown since: find our patient again
            p0 = ids.index(state["pid"])
        inner = _search_part(state)
        if not ids:
            yield [], None, {t: started for t in task.types}, 0
            return
        for p in range(p0, len(ids)):
            units = self._patient_units(task, ids[p])
            for u in range(u0 if p == p0 else 0, len(units)):
                url, params, rtype = units[u]
                for resources, after, _, _ in self.unit_steps(
                    url, params, inner, task.types, rtype
                ):
                    yield self._patient_step(resources, after, started, task, ids, p, u, units)
                inner = StepState()

    @staticmethod
    def _patient_step(
        resources: list[Resource],
        after: StepState | None,
        started: str,
        task: Task,
        ids: list[str],
        p: int,
        u: int,
        units: list[Any],
    ) -> Step:
        if after is not None:
            state = StepState(p=p, pid=ids[p], u=u, **_search_part(after))
        elif u + 1 < len(units):
            state = StepState(p=p, pid=ids[p], u=u + 1)
        elif p + 1 < len(ids):
            state = StepState(p=p + 1, pid=ids[p + 1], u=0)
        else:
            return resources, None, {t: started for t in task.types}, None
        state["started"] = started
        return resources, state, {}, None

    # ---- bulk export -----------------------------------------------------------------
    def _start_export(self, exporter: BulkExporter, task: Task) -> BulkJob:
        level, group = self.export_target()
        since = min((s for _, s in task.since), default=None)
        moment = datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None
        return exporter.kick_off(
            level=level,  # type: ignore[arg-type]
            group_id=group,
            types=task.types,
            since=moment,
        )

    def export_steps(self, task: Task, state: StepState) -> Iterator[Step]:
        """Export NDJSON cut into pages; resumable at (job, file, line).

        A resumed run polls the saved status URL again instead of starting a second export
        (Oracle Health refuses one while the first runs).
        """
        exporter = BulkExporter(self.client, poll_interval=1.0)
        job = (
            BulkJob.from_dict(state["job"])
            if state.get("job")
            else self._start_export(exporter, task)
        )
        manifest = exporter.wait(job)
        if manifest.error:
            log.warning("export reported %d error file(s)", len(manifest.error))
        files = [f for f in manifest.output if f.type in task.types]
        if task.files is not None:  # one part of a split full sync
            files = [f for i, f in enumerate(files) if i in set(task.files)]
        done = {t: manifest.transaction_time for t in task.types}
        f0, skip = int(state.get("file", 0)), int(state.get("line", 0))
        saved = job.to_dict()
        # The files' counts (optional in the manifest) are the run's total, so its progress
        # moves; without every count there is no estimate.
        counts = [f.count for f in files]
        total = None if None in counts else sum(counts)  # type: ignore[arg-type]
        for f in range(f0, len(files)):
            lines = exporter.iter_file(manifest, files[f])
            for page, line in _chunks(lines, self.page_size, skip if f == f0 else 0):
                yield page, StepState(job=saved, file=f, line=line), {}, total
        # What was deleted since `_since`: read after the output (its files number on).
        gone = list(manifest.deleted) if task.files is None else []
        for d in range(max(f0 - len(files), 0), len(gone)):
            f = len(files) + d
            bundles = exporter.iter_file(manifest, gone[d])
            for page, line in _chunks(bundles, BUNDLES_PER_STEP, skip if f == f0 else 0):
                marks = [m for b in page for m in _deletes_in(b, task.types)]
                yield marks, StepState(job=saved, file=f, line=line, deleted=True), {}, total
        yield [], None, done, total


def _search_part(state: StepState) -> StepState:
    """What of a patient task's state belongs to its current search (next link, split)."""
    part = StepState()
    if state.get("next"):
        part["next"] = state["next"]
    if state.get("split"):
        part["split"] = state["split"]
    if state.get("seen"):
        part["seen"] = state["seen"]
    return part


def _chunks(
    resources: Iterator[Resource], size: int, skip: int
) -> Iterator[tuple[list[Resource], int]]:
    """Pages of `size` after skipping `skip` lines, each with the last line number read."""
    page: list[Resource] = []
    line = 0
    for line, res in enumerate(resources, start=1):
        if line <= skip:
            continue
        page.append(res)
        if len(page) == size:
            yield page, line
            page = []
    if page:
        yield page, line


def _key(resource: Resource) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _history_id(entry: Any, rtype: str) -> str | None:
    """The id a history entry is about: from its resource, else its request or fullUrl."""
    if not isinstance(entry, dict):
        return None
    resource = entry.get("resource")
    if isinstance(resource, dict) and isinstance(resource.get("id"), str):
        return resource["id"]
    for text in ((entry.get("request") or {}).get("url"), entry.get("fullUrl")):
        if isinstance(text, str):
            parts = text.split("/_history/")[0].rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] == rtype and parts[-1]:
                return parts[-1]
    return None


def _deletes_in(bundle: Resource, types: tuple[str, ...]) -> list[list[str]]:
    """(type, id) of a Bulk Data `deleted` Bundle's DELETE entries, for these types."""
    marks = []
    for entry in bundle.get("entry") or []:
        if not isinstance(entry, dict) or not _is_delete(entry):
            continue
        url = str((entry.get("request") or {}).get("url") or "")
        parts = url.split("?")[0].split("/_history/")[0].rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] in types and parts[-1]:
            marks.append([parts[-2], parts[-1]])
    return marks


def marks_deletes(task: Task, after: StepState | None) -> bool:
    """A step of deletes, not resources: a history task's, or an export's `deleted` file."""
    return task.kind == "history" or bool(after and after.get(DELETES))


def _is_delete(entry: dict[str, Any]) -> bool:
    """A DELETE entry: its request says so, or it has no resource and a 204/410 response."""
    method = str((entry.get("request") or {}).get("method") or "").upper()
    if method:
        return method == "DELETE"
    status = str((entry.get("response") or {}).get("status") or "")
    return entry.get("resource") is None and status.startswith(("204", "410"))
