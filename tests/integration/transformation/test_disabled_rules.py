"""Property: a disabled rule in the database changes nothing the others would not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from holovitals_sync import migrations
from holovitals_sync.db import create_db_engine
from holovitals_sync.models import TransformKind
from holovitals_sync.services.transformation import (
    DataTransformationService,
    RuleIn,
    RuleSpec,
    compile_rules,
)
from holovitals_sync.services.transformation.compile import clone
from tests.unit.transformation.strategies import ALL_KINDS, OBJECTS

from .conftest import add_connection


@pytest.fixture(scope="module")
def rules_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[sa.Engine, int]]:
    """One connection with every rule kind, each saved disabled (SQLite, built once)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('rules') / 'rules.db'}"
    migrations.upgrade(url)
    engine = create_db_engine(url)
    with Session(engine) as session:
        cid = add_connection(session)
        svc = DataTransformationService(session)
        for kind, params in ALL_KINDS:
            svc.create(RuleIn(kind=kind, params=params, connection_id=cid, enabled=False))
        session.commit()
    yield engine, cid
    engine.dispose()


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(resource=OBJECTS, extra=st.sampled_from(ALL_KINDS))
def test_a_disabled_rule_changes_nothing(
    rules_db: tuple[sa.Engine, int],
    resource: dict[str, Any],
    extra: tuple[TransformKind, dict[str, Any]],
) -> None:
    engine, cid = rules_db
    with Session(engine) as session:
        svc = DataTransformationService(session)
        # Every stored rule is disabled: nothing may change.
        assert svc.apply_batch([resource], connection_id=cid)[0].resource == clone(resource)
        # One rule enabled next to the disabled ones: the result is that rule's alone.
        alone = compile_rules([RuleSpec(None, extra[0], extra[1])]).apply(resource).resource
        enabled = svc.create(RuleIn(kind=extra[0], params=extra[1], connection_id=cid))
        assert svc.apply_batch([resource], connection_id=cid)[0].resource == alone
        session.rollback()  # leave the shared database as it was
        assert enabled.id is not None
