"""What callers send to create or change a rule, and what a dry run returns."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ...models import RuleDirection, TransformKind
from ..patches import Patch
from .compile import RuleChange, RuleFailure

# "*" or a FHIR resource type name.
RESOURCE_TYPE_PATTERN = r"^(\*|[A-Z][A-Za-z]{1,63})$"


class RuleIn(BaseModel):
    """A new rule; `params` are checked against `kind` before anything is saved."""

    model_config = ConfigDict(extra="forbid")

    kind: TransformKind
    params: dict[str, Any] = Field(default_factory=dict)
    connection_id: int | None = None  # None: every connection
    resource_type: str = Field(default="*", pattern=RESOURCE_TYPE_PATTERN)
    position: int | None = None  # None: after the last rule of its scope
    enabled: bool = True
    direction: RuleDirection = RuleDirection.INBOUND
    description: str | None = Field(default=None, max_length=500)


class RulePatch(Patch):
    """Fields to change; unset ones stay. A new `kind` needs its `params` too; `null`
    clears only the description."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset({"description"})

    model_config = ConfigDict(extra="forbid")

    kind: TransformKind | None = None
    params: dict[str, Any] | None = None
    resource_type: str | None = Field(default=None, pattern=RESOURCE_TYPE_PATTERN)
    direction: RuleDirection | None = None
    description: str | None = Field(default=None, max_length=500)


class DryRun(BaseModel):
    """A connection's rules applied to one sample resource, nothing saved."""

    before: Any
    after: Any
    changes: list[dict[str, Any]]  # rule_id, kind, paths — in the order rules ran
    failures: list[dict[str, Any]]  # rule_id, kind, message

    @classmethod
    def of(
        cls, before: Any, after: Any, changes: list[RuleChange], failures: list[RuleFailure]
    ) -> DryRun:
        return cls(
            before=before,
            after=after,
            changes=[
                {"rule_id": c.rule_id, "kind": c.kind.value, "paths": c.paths} for c in changes
            ],
            failures=[
                {"rule_id": f.rule_id, "kind": f.kind.value, "message": f.message} for f in failures
            ],
        )
