"""The Records page: what HoloVitals holds for a connection, and the errors its jobs found.

Two lists of one connection, each paged on the server and filtered as the API filters them:
the records with their sync and delete state, and the record errors with an "Export CSV" of
exactly the filtered ones (the API's streamed export, fetched by the browser with its own
session cookie). A record opens in a dialog with HoloVitals' copy beside its issues.
"""

from __future__ import annotations

import reflex as rx

from ...services import labels
from ..components.layout import backend_url, dialog_content, empty_state, operator_only, page_frame
from ..state.records import RecordsState, RecordState
from ..views import records as views

ON_LOAD = [RecordsState.load]

__all__ = ["ON_LOAD", "RecordState", "RecordsState", "records_page"]

STATE_COLOURS = {
    "invalid": "red",
    "reference_missing": "amber",
    "dirty": "blue",
    "local_deleted": "orange",
    "deleted": "gray",
    "conflicts": "purple",
}
WRAP = {"overflow_wrap": "anywhere", "word_break": "break-word"}


def _labelled(label: str, control: rx.Component) -> rx.Component:
    return rx.vstack(rx.text(label, size="1", color_scheme="gray"), control, spacing="1")


def _picker(key: str, values: list[str] | rx.Var, label: str) -> rx.Component:
    return _labelled(
        label,
        rx.select(
            values,
            value=RecordsState.filters[key],
            size="2",
            id=f"records-filter-{key}",
            on_change=lambda v: RecordsState.set_filter(key, v),
        ),
    )


def _typed(
    name: str, label: str, placeholder: str, kind: str = "text", width: str = "10em"
) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"),
        rx.input(name=name, default_value=RecordsState.filters[name], placeholder=placeholder,
                 type=kind,
                 size="2", width=width, id=f"records-filter-{name}", title=placeholder),
        rx.cond(RecordsState.filter_errors.contains(name),
                rx.text(RecordsState.filter_errors[name], size="1", color_scheme="red",
                        id=f"records-error-{name}")),
        spacing="1",
    )  # fmt: skip


def _buttons() -> rx.Component:
    return rx.hstack(
        rx.button(rx.icon("search", size=14), "Filter", type="submit", size="2",
                  id="records-apply"),
        rx.button("Clear", type="button", size="2", variant="soft", color_scheme="gray",
                  on_click=RecordsState.clear, id="records-clear"),
        spacing="2",
    )  # fmt: skip


def _record_filters() -> rx.Component:
    return rx.form(
        rx.hstack(
            _typed("patient", "Patient", "Patient id at the EHR"),
            _picker("resource_type", RecordsState.resource_types, "Resource type"),
            *[_picker(key, list(options), labels.RECORD_FILTERS[key])
              for key, options in (("invalid", views.INVALID), ("dirty", views.DIRTY),
                                   ("deleted", views.DELETED))],
            _typed("changed_since", "Changed since (UTC)", "", kind="datetime-local",
                   width="13em"),
            _buttons(),
            align="end", spacing="3", wrap="wrap",
        ),
        on_submit=RecordsState.apply, reset_on_submit=False, width="100%", id="records-filters",
        key=RecordsState.form_key,
    )  # fmt: skip


def _error_filters() -> rx.Component:
    return rx.form(
        rx.hstack(
            _typed("job", "Job", "e.g. 42", width="6em"),
            _picker("error_type", RecordsState.resource_types, "Resource type"),
            _typed("remote_id", "Record id", "id at the EHR"),
            _picker("severity", views.SEVERITIES, "Severity"),
            _picker("layer", views.LAYERS, "Check"),
            _typed("rule", "Custom rule", "rule name"),
            _buttons(),
            align="end", spacing="3", wrap="wrap",
        ),
        on_submit=RecordsState.apply, reset_on_submit=False, width="100%",
        id="records-error-filters",
        key=RecordsState.form_key,
    )  # fmt: skip


def state_badges(row: rx.Var) -> rx.Component:
    """A record's sync and delete state in words (the machine name as the tooltip)."""
    return rx.flex(
        *[rx.cond(row[key] != "", rx.badge(
            label, *([" ", row[key]] if key == "conflicts" else []), title=key,
            color_scheme=STATE_COLOURS[key], variant="soft", class_name=f"state-{key}"))
          for key, label in labels.RECORD_STATES.items()],
        rx.cond((row["invalid"] == "") & (row["reference_missing"] == "") & (row["dirty"] == "")
                & (row["local_deleted"] == "") & (row["deleted"] == "")
                & (row["conflicts"] == ""),
                rx.text("in step", size="1", color_scheme="gray")),
        spacing="1", wrap="wrap",
    )  # fmt: skip


def _record_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(rx.text(row["type"], weight="medium", size="2",
                                        class_name="record-type"),
                                rx.code(row["remote_id"], size="1", style=WRAP,
                                        class_name="record-id"),
                                spacing="0"), max_width="16em"),
        rx.table.cell(rx.text(row["patient"], size="2", style=WRAP), max_width="10em"),
        rx.table.cell(state_badges(row), max_width="18em"),
        rx.table.cell(rx.text(row["version"], size="2", style=WRAP), max_width="6em"),
        rx.table.cell(rx.text(row["changed"], size="1", white_space="nowrap")),
        rx.table.cell(rx.button("Open", size="1", variant="soft", class_name="record-open",
                                on_click=RecordState.open_record(RecordsState.connection,
                                                                 row["type"],
                                                       row["remote_id"]))),
        id="record-row-" + row["id"], class_name="record-row",
    )  # fmt: skip


def _table(
    rows: rx.Var, headers: list[str], row: object, table_id: str, empty: str
) -> rx.Component:
    return rx.cond(
        rows.length() > 0,  # type: ignore[attr-defined]
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(rx.text(h, size="1"))
                                           for h in headers])),
            rx.table.body(rx.foreach(rows, row)),
            width="100%", variant="surface", size="1", id=table_id,
        ),
        empty_state(empty),
    )  # fmt: skip


def _severity(value: rx.Var) -> rx.Component:
    return rx.badge(value, color_scheme=rx.match(value, ("error", "red"), ("warning", "amber"),
                                                  "gray"), variant="soft")  # fmt: skip


def _error_row(row: rx.Var) -> rx.Component:
    resource = rx.vstack(
        rx.text(row["type"], weight="medium", size="2"),
        rx.code(row["remote_id"], size="1", style=WRAP),
        spacing="0",
    )
    return rx.table.row(
        rx.table.cell(rx.text(row["when"], size="1", white_space="nowrap")),
        rx.table.cell(rx.cond(row["job"] != "", rx.text("#", row["job"], size="2"), "—")),
        rx.table.cell(rx.cond(
            row["remote_id"] != "",
            rx.link(resource, on_click=RecordState.open_record(RecordsState.connection,
                                                               row["type"], row["remote_id"]),
                    cursor="pointer", class_name="error-open"),
            rx.text(row["type"], size="2")), max_width="14em"),
        rx.table.cell(rx.code(row["path"], size="1", style=WRAP), max_width="12em"),
        rx.table.cell(_severity(row["severity"])),
        rx.table.cell(rx.text(row["message"], size="1", style=WRAP), max_width="26em"),
        class_name="error-row",
    )  # fmt: skip


def _pager(back: rx.Var, next_cursor: rx.Var, handler: object, prefix: str) -> rx.Component:
    return rx.hstack(
        rx.button(rx.icon("chevron-left", size=14), "Previous", on_click=handler(False),  # type: ignore[operator]

                  disabled=back.length() == 0, size="1", variant="soft",  # type: ignore[attr-defined]
                  id=f"{prefix}-prev"),
        rx.button("Next", rx.icon("chevron-right", size=14), on_click=handler(True),  # type: ignore[operator]

                  disabled=next_cursor == 0, size="1", variant="soft", id=f"{prefix}-next"),
        justify="end", width="100%",
    )  # fmt: skip


def csv_link() -> rx.Component:
    """The API's CSV of the errors as filtered: the browser fetches it (with its HttpOnly
    session cookie, which no script of the page can read) and saves the file it names.

    `reload_document`: a plain navigation, never the client-side router, which would look
    for a page at that path where the API shares the page's origin (production)."""
    return rx.button(
        rx.el.a(rx.icon("download", size=14), "Export CSV", href=backend_url(RecordsState.csv_path),
                download="", reload_document=True, id="records-csv"),
        as_child=True, size="2", variant="soft",
    )  # fmt: skip


def _records_view() -> rx.Component:
    return rx.vstack(
        _record_filters(),
        _table(RecordsState.rows, ["Resource", "Patient", "State", "EHR version", "Changed (UTC)",
                                   ""],
               _record_row, "records-table", "No records match."),
        _pager(RecordsState.back, RecordsState.next_cursor, RecordsState.page, "records"),
        spacing="3", width="100%",
    )  # fmt: skip


def _errors_view() -> rx.Component:
    return rx.vstack(
        _error_filters(),
        rx.hstack(rx.text("Newest first. The export holds every error these filters match.",
                          size="1", color_scheme="gray"),
                  rx.spacer(), rx.cond(RecordsState.csv_path != "", csv_link()),
                  align="center", width="100%"),
        _table(RecordsState.errors, ["When (UTC)", "Job", "Resource", "Element", "Severity",
                                     "Message"],
               _error_row, "errors-table", "No record errors match."),
        _pager(RecordsState.errors_back, RecordsState.errors_next, RecordsState.errors_page,
               "errors"),
        spacing="3", width="100%",
    )  # fmt: skip


def _toolbar() -> rx.Component:
    return rx.hstack(
        _labelled("Connection", rx.select.root(
            rx.select.trigger(id="records-connection", placeholder="No connections yet"),
            rx.select.content(rx.foreach(RecordsState.connections,
                                         lambda c: rx.select.item(c["name"], value=c["id"]))),
            value=RecordsState.connection, on_change=RecordsState.set_connection,
        )),
        rx.tabs.root(
            rx.tabs.list(rx.tabs.trigger("Records", value="records", id="records-view-records"),
                         rx.tabs.trigger("Errors", value="errors", id="records-view-errors")),
            value=RecordsState.view, on_change=RecordsState.set_view,
        ),
        align="end", spacing="5", width="100%",
    )  # fmt: skip


# -- the record dialog -------------------------------------------------------------------------


def _issue(issue: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.hstack(_severity(issue["severity"]),
                  rx.cond(issue["path"] != "", rx.code(issue["path"], size="1", style=WRAP)),
                  spacing="2", align="center", wrap="wrap"),
        rx.text(issue["message"], size="2", style=WRAP),
        rx.text(rx.cond(issue["job"] != "", "job #" + issue["job"] + " · ", ""), issue["when"],
                " UTC", size="1", color_scheme="gray"),
        spacing="1", width="100%", padding_bottom="0.5em",
        border_bottom=f"1px solid {rx.color('gray', 4)}", class_name="record-issue",
    )  # fmt: skip


def _issues() -> rx.Component:
    return rx.vstack(
        rx.heading("Issues", size="3"),
        rx.cond(RecordState.issues.length() > 0,  # type: ignore[attr-defined]
                rx.vstack(rx.foreach(RecordState.issues, _issue), spacing="2", width="100%"),
                rx.text("No errors recorded for this record.", size="2", color_scheme="gray")),
        rx.cond(RecordState.summary["issues_more"] != "",
                rx.text("The newest ", views.ISSUES_SHOWN, " are shown; the Errors list has "
                        "them all.", size="1", color_scheme="gray")),
        spacing="2", width="100%", id="record-issues", min_width="0",
    )  # fmt: skip


def _body() -> rx.Component:
    box = {"white_space": "pre-wrap", "font_family": "monospace", "overflow_wrap": "anywhere"}
    return rx.vstack(
        rx.heading("HoloVitals' copy", size="3"),
        rx.box(rx.text(RecordState.body, size="1", style=box), id="record-body", width="100%",
               max_height="50vh", overflow_y="auto", padding="0.5em",
               background_color=rx.color("gray", 2), border_radius="6px"),
        rx.cond(RecordState.remote_body != "", rx.accordion.root(
            rx.accordion.item(
                header=rx.text("The EHR's copy (differs)", size="2", id="record-remote-toggle"),
                content=rx.box(rx.text(RecordState.remote_body, size="1", style=box),
                               max_height="40vh",
                               overflow_y="auto", id="record-remote-body"),
                value="remote"),
            collapsible=True, type="single", width="100%", variant="ghost")),
        spacing="2", width="100%", min_width="0",
    )  # fmt: skip


def _notes() -> rx.Component:
    s = RecordState.summary
    return rx.vstack(
        rx.cond(s["deleted"] != "", rx.callout(
            rx.text("Deleted at the EHR on ", s["deleted_at"], " UTC: ", s["delete_reason"]),
            icon="trash-2", color_scheme="gray", width="100%", id="record-tombstone")),
        rx.cond(s["local_deleted"] != "", rx.callout(
            rx.text("Deleted in HoloVitals by ", s["local_deleted_by"], " on ",
                    s["local_deleted_at"], " UTC; the next outbound or bidirectional job "
                    "deletes it at the EHR."),
            icon="clock", color_scheme="orange", width="100%", id="record-delete-pending")),
        rx.cond(s["conflicts"] != "", rx.callout(
            rx.hstack(rx.text(s["conflicts"], " open conflict(s) hold this record."),
                      rx.link("Open the Conflicts page", href="/conflicts"), spacing="2"),
            icon="git-compare", color_scheme="purple", width="100%", id="record-conflicts")),
        spacing="2", width="100%",
    )  # fmt: skip


def _delete_control() -> rx.Component:
    """For operators: ask for the delete at the EHR, after a confirmation; or why not."""
    s = RecordState.summary
    return operator_only(rx.cond(
        s["delete_refusal"] == "",
        rx.alert_dialog.root(
            rx.alert_dialog.trigger(rx.button(rx.icon("trash-2", size=14), "Delete at the EHR…",
                                              color_scheme="red", variant="soft",
                                              loading=RecordState.busy, id="record-delete")),
            rx.alert_dialog.content(
                rx.alert_dialog.title("Delete this record at the EHR?"),
                rx.alert_dialog.description(
                    "HoloVitals deletes its copy of ", rx.text.strong(s["type"], " ",
                                                                      s["remote_id"]),
                    ". The next outbound or bidirectional job deletes it at the EHR and keeps "
                    "it here as a tombstone; if the EHR changed it meanwhile, a conflict asks "
                    "a person first."),
                rx.hstack(
                    rx.alert_dialog.cancel(rx.button("Cancel", variant="soft",
                                                     color_scheme="gray")),
                    rx.alert_dialog.action(rx.button("Delete", color_scheme="red",
                                                     on_click=RecordState.delete_local,
                                                     id="record-delete-confirm")),
                    justify="end", spacing="2", padding_top="1em",
                ),
            ),
        ),
        rx.text("No delete: ", s["delete_refusal"], size="1", color_scheme="gray",
                id="record-delete-refusal", max_width="30em"),
    ))  # fmt: skip


def record_dialog() -> rx.Component:
    s = RecordState.summary
    return rx.dialog.root(
        dialog_content(
            rx.hstack(rx.text(s["type"], " ", s["remote_id"], style=WRAP),
                      state_badges(s), align="center", spacing="3", wrap="wrap"),
            rx.vstack(
                _notes(),
                rx.cond(RecordState.error != "", rx.callout(RecordState.error, color_scheme="red",
                                                            width="100%",
                                                  id="record-error")),
                rx.grid(_body(), _issues(), columns="2", spacing="4", width="100%"),
                spacing="3", width="100%",
            ),
            footer=rx.hstack(
                _delete_control(),
                rx.spacer(),
                rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray",
                                          id="record-close")),
                align="center", width="100%",
            ),
            description=rx.dialog.description(
                rx.cond((s["patient"] != "") & (s["type"] != "Patient"),
                        "Patient " + s["patient"] + " · ", ""),
                "EHR version ", s["version"], " · last synced ", s["synced"], " UTC",
                rx.cond(s["last_job"] != "", " by job #" + s["last_job"], ""),
                size="2", color_scheme="gray"),
            max_width="64em", id="record-dialog",
        ),
        open=RecordState.open,
        on_open_change=RecordState.set_open,
    )  # fmt: skip


def records_page() -> rx.Component:
    return page_frame(
        "Records",
        _toolbar(),
        rx.cond(RecordsState.view == "errors", _errors_view(), _records_view()),
        record_dialog(),
    )
