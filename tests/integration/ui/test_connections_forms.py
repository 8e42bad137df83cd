"""The Connections page's services on SQLite and PostgreSQL: the vendor-driven form, saving
through it (secrets write-only), paging, schedules, rule editing and the dry run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from holovitals_sync import migrations
from holovitals_sync.adapters.registry import ADAPTERS
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import AuditLog, EHRConnection, TransformationRule
from holovitals_sync.services.connections import ConnectionIn, ConnectionPatch, create_connection
from holovitals_sync.services.crypto import decrypt
from holovitals_sync.services.transformation import DataTransformationService
from holovitals_sync.ui.state.connections import _save, _save_schedule
from holovitals_sync.ui.state.rules import _change
from holovitals_sync.ui.state.rules import _save as save_rule
from holovitals_sync.ui.views import connection_forms as forms
from holovitals_sync.ui.views import connections as views
from holovitals_sync.ui.views import rule_forms
from tests.factories import SYSTEM, make_connection

NOW = datetime(2026, 11, 26, 12, 7, tzinfo=UTC)


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    migrations.upgrade(database_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield database_url
    get_engine().dispose()


# -- the form follows the profile ------------------------------------------------------


def _names(vendor: str, **values: str) -> list[str]:
    return [f["name"] for f in forms.form_fields(vendor, {**forms.initial_values(vendor),
                                                           **values}, {})]  # fmt: skip


def test_each_vendor_asks_for_its_profile_fields():
    for vendor, cls in ADAPTERS.items():
        names = _names(vendor)
        for field in cls.PROFILE.admin_fields:
            options = [f.strip() for f in field.split(" or ")]
            shown = [f for f in options if f in names or f == "private_key"]
            # "client_secret or private_key": the secret shows for secret-based auth only.
            assert shown or "client_secret" in options, (vendor, field, names)
    assert "tenant_id" in _names("oracle_health") and "base_url" not in _names("oracle_health")
    assert "practice_id" in _names("athenahealth")
    assert "base_url" in _names("epic") and "client_secret" not in _names("epic")


def test_a_free_base_url_shows_an_example_not_the_template():
    (base,) = [
        f
        for f in forms.form_fields("generic", forms.initial_values("generic"), {})
        if f["name"] == "base_url"
    ]
    assert base["placeholder"] == forms.EXAMPLE_BASE_URL and "{" not in base["placeholder"]


def test_secret_field_follows_the_auth_method():
    assert "client_secret" in _names("oracle_health", auth_method="client_secret_basic")
    assert "client_secret" not in _names("oracle_health", auth_method="smart_backend")
    assert forms.auth_note("epic", forms.initial_values("epic")).startswith("After saving")


def test_messages_are_given_per_field_and_nothing_is_saved(db):
    values = {**forms.initial_values("oracle_health"), "name": "Mercy", "client_id": "c"}
    saved, errors = _save("oracle_health", values, 0, SYSTEM)
    assert saved is None
    assert errors == {"tenant_id": "Required (part of the base URL)", "client_secret": "Required"}
    values = {**forms.initial_values("generic"), "name": "X", "client_id": "c",
              "base_url": "fhir.example.org/r4", "auth_method": "client_secret_basic",
              "client_secret": "s3cret"}  # fmt: skip
    saved, errors = _save("generic", values, 0, SYSTEM)
    assert (saved, errors) == (None, {"base_url": "Enter a URL starting with http:// or https://"})
    # An overlong name is told its limit, not only that it "is too long".
    saved, errors = _save(
        "generic",
        {**values, "base_url": "https://fhir.example.org/r4", "name": "N" * 10_000},
        0,
        SYSTEM,
    )
    assert (saved, errors) == (None, {"name": "At most 200 characters"})
    with session_scope() as session:
        assert session.exec(select(EHRConnection)).all() == []


def test_template_vendor_saves_its_rendered_url_and_encrypted_secret(db):
    values = {**forms.initial_values("oracle_health"), "name": "Mercy", "client_id": "c",
              "tenant_id": "ec2458f2", "client_secret": "s3cret-value"}  # fmt: skip
    saved, errors = _save("oracle_health", values, 0, SYSTEM)
    assert errors == {} and saved is not None
    with session_scope() as session:
        row = session.get(EHRConnection, saved)
        assert row.base_url == "https://fhir-ehr.cerner.com/r4/ec2458f2"
        assert row.vendor_params == {"tenant_id": "ec2458f2"}
        assert "s3cret" not in (row.credentials_encrypted or "")
        assert decrypt(row.credentials_encrypted) == "s3cret-value"
        # Editing: the stored secret is never sent back, and blank keeps it.
        edit = forms.initial_values("oracle_health", row)
        assert edit["client_secret"] == ""
        fields = forms.form_fields("oracle_health", edit, {}, has_secret=True)
        secret = next(f for f in fields if f["name"] == "client_secret")
        assert (secret["value"], secret["required"]) == ("", "")
    saved_again, errors = _save("oracle_health", {**edit, "name": "Mercy East"}, saved, SYSTEM)
    assert (saved_again, errors) == (saved, {})
    with session_scope() as session:
        row = session.get(EHRConnection, saved)
        assert (row.name, decrypt(row.credentials_encrypted)) == ("Mercy East", "s3cret-value")


def test_edit_keeps_parameters_the_form_does_not_show(db):
    with session_scope() as session:
        row = make_connection(session, vendor_params={"inbound_signature_algorithm": "hmac-sha512"})
        row_id = row.id
    with session_scope() as session:
        values = {
            **forms.initial_values("generic", session.get(EHRConnection, row_id)),
            "client_id": "other",
        }
    assert _save("generic", values, row_id, SYSTEM) == (row_id, {})
    with session_scope() as session:
        row = session.get(EHRConnection, row_id)
        assert row.vendor_params == {"inbound_signature_algorithm": "hmac-sha512"}
        assert row.client_id == "other"


def test_duplicate_name_is_a_message_at_the_name(db):
    with session_scope() as session:
        make_connection(session, "General Hospital")
    values = {**forms.initial_values("generic"), "name": "General Hospital", "client_id": "c",
              "base_url": "https://fhir.example.org/r4", "auth_method": "none"}  # fmt: skip
    saved, errors = _save("generic", values, 0, SYSTEM)
    assert saved is None and "exists already" in errors["name"]


# -- list and schedule -----------------------------------------------------------------


def test_connection_page_is_paged_and_filtered_on_the_server(db):
    with session_scope() as session:
        for i in range(12):
            make_connection(session, f"Hospital {i:02d}")
        make_connection(session, "Clinic 100%")
    with session_scope() as session:
        first = views.connection_page(session, page=0, per_page=5)
        last = views.connection_page(session, page=99, per_page=5)
        found = views.connection_page(session, search="100%")
        none = views.connection_page(session, search="_")
    assert (first.total, first.pages, len(first.rows)) == (13, 3, 5)
    assert first.rows[0]["name"] == "Clinic 100%" and first.rows[1]["name"] == "Hospital 00"
    assert last.page == 2
    assert [r["name"] for r in last.rows] == ["Hospital 09", "Hospital 10", "Hospital 11"]
    assert [r["name"] for r in found.rows] == ["Clinic 100%"] and none.total == 0
    assert all("secret" not in key for key in first.rows[0])


def test_schedule_preview_and_save(db):
    preview = views.schedule_preview("*/15 * * * *", count=3, now=NOW)
    assert [t.strftime("%H:%M") for t in preview.next_runs] == ["12:15", "12:30", "12:45"]
    assert views.schedule_preview("every hour").error.startswith("not a valid cron")
    with session_scope() as session:
        row_id = make_connection(session).id
    assert _save_schedule(row_id, "61 * * * *", "0", SYSTEM).keys() == {"schedule", "concurrency"}
    assert _save_schedule(row_id, "0 2 * * *", "4", SYSTEM) == {}
    with session_scope() as session:
        row = session.get(EHRConnection, row_id)
        assert (row.sync_schedule, row.concurrency_limit) == ("0 2 * * *", 4)
        last = session.exec(select(AuditLog).order_by(AuditLog.seq.desc())).first()
        assert last.action == "connection.update"
        assert last.details == {"fields": ["concurrency_limit", "sync_schedule"]}
    assert _save_schedule(row_id, "", "4", SYSTEM) == {}
    with session_scope() as session:
        assert session.get(EHRConnection, row_id).sync_schedule is None
    assert views.schedule_patch("", "2") == (
        ConnectionPatch(sync_schedule=None, concurrency_limit=2),
        {},
    )


def test_sweep_schedule_is_saved_turned_off_and_checked(db):
    with session_scope() as session:
        row = make_connection(session)
        row_id, default = row.id, row.sweep_schedule
        assert views.to_row(row)["sweep"] == default == "30 2 * * *"
    # A bad sweep cron is named at its own field, and nothing is stored.
    assert _save_schedule(row_id, "0 * * * *", "2", SYSTEM, sweep="at night") == {
        "sweep": "not a valid cron expression (minute hour day month weekday)"
    }
    with session_scope() as session:
        assert session.get(EHRConnection, row_id).sync_schedule is None
    assert _save_schedule(row_id, "", "2", SYSTEM, sweep=" 15 3 * * 0 ") == {}
    with session_scope() as session:
        assert session.get(EHRConnection, row_id).sweep_schedule == "15 3 * * 0"
        last = session.exec(select(AuditLog).order_by(AuditLog.seq.desc())).first()
        assert last.details == {"fields": ["concurrency_limit", "sweep_schedule", "sync_schedule"]}
    assert _save_schedule(row_id, "", "2", SYSTEM, sweep="") == {}  # blank: the sweep is off
    with session_scope() as session:
        assert session.get(EHRConnection, row_id).sweep_schedule is None
    # A caller that leaves the sweep out leaves it as it is.
    assert _save_schedule(row_id, "5 * * * *", "2", SYSTEM) == {}
    with session_scope() as session:
        assert session.get(EHRConnection, row_id).sweep_schedule is None


# -- rules -----------------------------------------------------------------------------


def _rule_values(params: str, kind: str = "value_map") -> dict[str, str]:
    return {"kind": kind, "params": params, "resource_type": "Patient", "direction": "inbound"}


def test_rule_editor_validates_saves_reorders_and_dry_runs(db):
    with session_scope() as session:
        conn = create_connection(
            session,
            data=ConnectionIn(name="A", vendor="generic", base_url="https://a.example/r4"),
            actor=SYSTEM,
        )
        other = make_connection(session, "B")
        conn_id, other_id = conn.id, other.id
    assert save_rule(conn_id, 0, _rule_values("{nope"), SYSTEM)["params"].startswith("not valid")
    assert "params" in save_rule(conn_id, 0, _rule_values('{"path": "gender"}'), SYSTEM)
    assert "resource_type" in save_rule(
        conn_id, 0, {**_rule_values("{}"), "resource_type": "patient"}, SYSTEM
    )
    assert save_rule(conn_id, 0, _rule_values(rule_forms.param_template("value_map")),
                     SYSTEM) == {}  # fmt: skip
    assert save_rule(conn_id, 0, _rule_values('{"path": "gender", "value": "unknown"}',
                                              "default_value"), SYSTEM) == {}  # fmt: skip
    with session_scope() as session:
        first, second = DataTransformationService(session).list_rules(connection_id=conn_id)
        ids = [first.id, second.id]
    edited = _rule_values('{"path": "gender", "mapping": {"F": "female"}}')
    assert save_rule(other_id, ids[0], edited, SYSTEM) == {
        "kind": "this rule or connection no longer exists"
    }  # another connection's rule
    assert save_rule(conn_id, ids[0], edited, SYSTEM) == {}
    assert _change(conn_id, ids[1], "up", SYSTEM) == ""
    assert _change(other_id, ids[0], "delete", SYSTEM) != ""  # not that connection's rule
    assert _change(conn_id, ids[1], "disable", SYSTEM) == ""
    with session_scope() as session:
        rows = DataTransformationService(session).list_rules(connection_id=conn_id)
        assert [(r.id, r.enabled) for r in rows] == [(ids[1], False), (ids[0], True)]
        assert rows[1].params["mapping"] == {"F": "female"}
        result = DataTransformationService(session).dry_run(
            conn_id, {"resourceType": "Patient", "gender": "F"}
        )
    view = rule_forms.dry_run_view(result)
    assert '"female"' in view["after"] and '"F"' in view["before"]
    assert view["lines"] == [
        {"rule_id": str(ids[0]), "kind": "value_map", "what": "gender", "ok": "yes"}
    ]
    assert _change(conn_id, ids[0], "delete", SYSTEM) == ""
    with session_scope() as session:
        assert [r.id for r in session.exec(select(TransformationRule))] == [ids[1]]


def test_every_kind_template_is_a_valid_rule():
    for kind in rule_forms.kind_options():
        parsed, errors = rule_forms.parse_rule(
            _rule_values(rule_forms.param_template(kind), kind), connection_id=None, editing=False
        )
        assert errors == {}, kind
        from holovitals_sync.services.transformation import parse_params

        parse_params(kind, parsed.params)


def test_sample_must_be_one_resource():
    assert rule_forms.parse_sample("[1]")[1].startswith("paste one FHIR resource")
    assert rule_forms.parse_sample("{")[1].startswith("not valid JSON")
    assert rule_forms.parse_sample('{"resourceType": "Patient"}') == (
        {"resourceType": "Patient"},
        "",
    )
    assert rule_forms.moved([1, 2, 3], 1, -1) is None
    assert rule_forms.moved([1, 2, 3], 1, 1) == [2, 1, 3]


def test_typed_values_stay_on_the_server():
    """The dialog's raw values (a typed secret among them) are a backend-only var: never
    part of the state sent to the browser; the rendered fields carry no secret value."""
    from holovitals_sync.ui.state.connections import ConnectionsState

    assert "_form_values" not in ConnectionsState.base_vars
    values = {
        **forms.initial_values("generic"),
        "auth_method": "client_secret_basic",
        "client_secret": "typed-secret",
    }
    fields = forms.form_fields("generic", values, {})
    assert "typed-secret" not in str(fields)


def test_full_sync_via_is_chosen_on_the_schedule_card(db):
    with session_scope() as session:
        row_id = make_connection(session).id
    assert _save_schedule(row_id, "", "2", SYSTEM, full_sync_via="bulk") == {
        "full_sync_via": "export or search"
    }
    with session_scope() as session:
        assert session.get(EHRConnection, row_id).full_sync_via == "export"  # nothing stored
    assert _save_schedule(row_id, "", "2", SYSTEM, full_sync_via="search") == {}
    with session_scope() as session:
        assert session.get(EHRConnection, row_id).full_sync_via == "search"
        last = session.exec(select(AuditLog).order_by(AuditLog.seq.desc())).first()
        assert last.details == {"fields": ["concurrency_limit", "full_sync_via", "sync_schedule"]}
    # A caller that leaves it out leaves it as it is.
    assert _save_schedule(row_id, "", "2", SYSTEM) == {}
    with session_scope() as session:
        assert session.get(EHRConnection, row_id).full_sync_via == "search"


def test_resource_types_are_typed_on_the_schedule_card(db):
    from holovitals_sync.models import Vendor

    with session_scope() as session:
        row_id = make_connection(session, vendor=Vendor.EPIC, vendor_params={"tenant": "t"}).id

    def types() -> list[str]:
        with session_scope() as session:
            return session.get(EHRConnection, row_id).resource_types

    assert _save_schedule(row_id, "", "2", SYSTEM, resource_types="Observation") == {
        "resource_types": "Patient is always synced: add it, or leave the list empty for all"
    }
    refused = _save_schedule(row_id, "", "2", SYSTEM, resource_types="Patient, Questionnaire")
    assert refused["resource_types"].startswith("Epic does not serve Questionnaire; it serves ")
    assert types() == []  # nothing stored
    assert (
        _save_schedule(row_id, "", "2", SYSTEM, resource_types="Patient,Observation  Condition")
        == {}
    )
    assert types() == ["Patient", "Observation", "Condition"]
    assert views.types_text(types()) == "Patient, Observation, Condition"  # as the card shows it
    assert _save_schedule(row_id, "", "2", SYSTEM, resource_types=" ") == {}
    assert types() == []  # blank: all again


def test_page_size_and_streams_are_set_on_the_schedule_card(db):
    with session_scope() as session:
        row = make_connection(session)
        row_id = row.id
        row.page_size_learned = 200  # what an earlier run learned of this server
    assert _save_schedule(row_id, "", "2", SYSTEM, page_size="5", streams="17") == {
        "page_size": "blank (the vendor's), or a whole number from 10 to 10000",
        "streams": "a whole number from 1 to 16",
    }
    assert _save_schedule(row_id, "", "2", SYSTEM, page_size="lots", streams="2") == {
        "page_size": "blank (the vendor's), or a whole number from 10 to 10000"
    }
    with session_scope() as session:
        row = session.get(EHRConnection, row_id)
        assert (row.page_size, row.stream_limit) == (None, 4)  # nothing stored
    # A save that sends the page size unchanged (the card sends every field) keeps what
    # the server was found to honour.
    assert _save_schedule(row_id, "0 * * * *", "2", SYSTEM, page_size="", streams="4") == {}
    with session_scope() as session:
        assert session.get(EHRConnection, row_id).page_size_learned == 200
    assert _save_schedule(row_id, "", "2", SYSTEM, page_size=" 500 ", streams="2") == {}
    with session_scope() as session:
        row = session.get(EHRConnection, row_id)
        # A new page size is asked of the server anew.
        assert (row.page_size, row.stream_limit, row.page_size_learned) == (500, 2, None)
    # Blank goes back to the vendor's page size; left out, both stay as they are.
    assert _save_schedule(row_id, "", "2", SYSTEM, page_size="", streams="3") == {}
    assert _save_schedule(row_id, "", "2", SYSTEM) == {}
    with session_scope() as session:
        row = session.get(EHRConnection, row_id)
        assert (row.page_size, row.stream_limit) == (None, 3)


def test_streams_above_the_jobs_at_once_are_said_to_be_capped():
    """Each stream counts against the connection's jobs at once, so a sync pages at most
    that many types at once: the card says so instead of staying silent (not an error: the
    API accepts the same, and raising the limit lets the setting take effect). The card
    shows this text (tests/e2e/test_connections_ui.py)."""
    assert views.streams_capped("6", "3") == (
        "pages 3 types at once: each counts against the jobs at once"
    )
    assert views.streams_capped("2", "1").startswith("pages 1 type at once")
    assert views.streams_capped("3", "3") == ""
    assert views.streams_capped("2", " 3 ") == ""
    assert views.streams_capped("6", "") == ""  # a limit being typed: nothing to say yet
    assert views.streams_capped("lots", "3") == ""
