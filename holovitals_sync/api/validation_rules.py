"""A connection's custom validation rules: list, add, replace, edit, enable/disable, reorder,
delete, and a check run on a sample resource.

Reads are open to every signed-in role, the check run to operators (as the transformation
dry run), changes to admins. A refused rule is a 422 whose `fields` name what was wrong
(`body.pattern`, `body.expression`, ...), with nothing saved.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from ..models import ErrorSeverity
from ..services.patches import Patch
from ..services.validation.custom import RULE_ID, FhirPathAssertion, PatternCheck, RangeCheck
from ..services.validation_rules import (
    MAX_RULES,
    ConnectionNotFound,
    InvalidValidationRule,
    ValidationRuleService,
    rule_view,
)
from .deps import Admin, Operator, SessionDep, Viewer
from .errors import error_body
from .strict import strict_body

_TAGS = {"range", "pattern", "fhirpath"}


def _untag(error: dict[str, Any]) -> dict[str, Any]:
    """("body", "pattern", "pattern") -> ("body", "pattern"): the check kind is no field."""
    loc = tuple(error.get("loc", ()))
    if len(loc) > 2 and loc[0] == "body" and loc[1] in _TAGS:
        loc = ("body", *loc[2:])
    return {**error, "loc": loc, "msg": str(error.get("msg", "")).removeprefix("Value error, ")}


class _RuleRoute(APIRoute):
    """Body errors named by the rule's field, the way the service names its own refusals."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise RequestValidationError(
                    [_untag(e) for e in exc.errors()], body=exc.body
                ) from None

        return run


router = APIRouter(
    prefix="/api/connections/{connection_id}/validation-rules",
    tags=["validation rules"],
    route_class=_RuleRoute,
)


class ValidationRuleOut(BaseModel):
    """One rule; the fields of other checks are absent."""

    id: str
    check: Literal["range", "pattern", "fhirpath"]
    name: str
    resource_type: str
    severity: ErrorSeverity
    enabled: bool
    path: str | None = None
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    expression: str | None = None


class ValidationRulePatch(Patch):
    """Fields to change; the rule that results is validated as a whole (`null` clears only
    a range's `min` or `max`)."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset({"min", "max"})

    model_config = ConfigDict(extra="forbid")

    check: Literal["range", "pattern", "fhirpath"] | None = None
    name: str | None = Field(default=None, max_length=100)
    resource_type: str | None = Field(default=None, max_length=64)
    severity: ErrorSeverity | None = None
    enabled: bool | None = None
    path: str | None = Field(default=None, max_length=300)
    min: float | None = None
    max: float | None = None
    pattern: str | None = Field(default=None, max_length=500)
    expression: str | None = Field(default=None, max_length=2000)


class ReorderIn(BaseModel):
    rule_ids: list[Annotated[str, Field(pattern=RULE_ID)]] = Field(
        min_length=1, max_length=MAX_RULES
    )


class CheckIn(BaseModel):
    resource: dict[str, Any]


class IssueOut(BaseModel):
    resource_type: str
    resource_id: str | None
    path: str | None
    message: str
    severity: ErrorSeverity


# Request bodies with strict scalars (see api.strict): `"5"` is no bound, `1` no boolean.
RuleBody = Annotated[
    strict_body(RangeCheck) | strict_body(PatternCheck) | strict_body(FhirPathAssertion),
    Body(discriminator="check"),
]
PatchBody = strict_body(ValidationRulePatch)
ReorderBody = strict_body(ReorderIn)
CheckBody = strict_body(CheckIn)
RuleId = Annotated[str, Path(max_length=40)]


def _refused(session: SessionDep, exc: InvalidValidationRule) -> JSONResponse:
    session.rollback()  # nothing was changed; make sure nothing is committed either
    fields = [{"field": f"body.{field}", "message": message} for field, message in exc.errors]
    return JSONResponse(
        error_body(422, f"invalid rule: {exc}"[:1000], fields=fields), status_code=422
    )


def _missing(exc: LookupError) -> HTTPException:
    if isinstance(exc, ConnectionNotFound):
        return HTTPException(404, "no such connection")
    return HTTPException(404, "no such validation rule")


@router.get("", response_model=list[ValidationRuleOut], response_model_exclude_none=True)
def list_rules(connection_id: int, _viewer: Viewer, session: SessionDep
               ) -> list[dict[str, Any]]:  # fmt: skip
    """The connection's custom rules in the order they run (disabled ones included)."""
    try:
        return [rule_view(r) for r in ValidationRuleService(session).list_rules(connection_id)]
    except LookupError as exc:
        raise _missing(exc) from None


@router.post(
    "", response_model=ValidationRuleOut, status_code=201, response_model_exclude_none=True
)
def add_rule(connection_id: int, body: RuleBody, admin: Admin, session: SessionDep
             ) -> Any:  # fmt: skip
    """Add a rule at the end; its regex, FHIRPath or path is checked now."""
    try:
        rule = ValidationRuleService(session, actor=admin.actor).add(connection_id, body)
    except InvalidValidationRule as exc:
        return _refused(session, exc)
    except LookupError as exc:
        raise _missing(exc) from None
    return rule_view(rule)


@router.post("/reorder", response_model=list[ValidationRuleOut], response_model_exclude_none=True)
def reorder(connection_id: int, body: ReorderBody, admin: Admin, session: SessionDep) -> Any:
    """Run the rules in this order (every rule id of the connection, once)."""
    try:
        rules = ValidationRuleService(session, actor=admin.actor).reorder(
            connection_id, body.rule_ids
        )
    except InvalidValidationRule as exc:
        return _refused(session, exc)
    except LookupError as exc:
        raise _missing(exc) from None
    return [rule_view(r) for r in rules]


@router.post("/check", response_model=list[IssueOut])
def check(connection_id: int, body: CheckBody, _operator: Operator, session: SessionDep
          ) -> Any:  # fmt: skip
    """Run the enabled rules on a sample resource and return what they find; nothing is saved."""
    try:
        issues = ValidationRuleService(session).check(connection_id, body.resource)
    except InvalidValidationRule as exc:
        return _refused(session, exc)
    except LookupError as exc:
        raise _missing(exc) from None
    return [
        IssueOut(
            resource_type=i.resource_type,
            resource_id=i.resource_id,
            path=i.path,
            message=i.message,
            severity=i.severity,
        )
        for i in issues
    ]


@router.get("/{rule_id}", response_model=ValidationRuleOut, response_model_exclude_none=True)
def get_rule(connection_id: int, rule_id: RuleId, _viewer: Viewer, session: SessionDep
             ) -> dict[str, Any]:  # fmt: skip
    """One rule."""
    try:
        return rule_view(ValidationRuleService(session).get(connection_id, rule_id))
    except LookupError as exc:
        raise _missing(exc) from None


@router.put("/{rule_id}", response_model=ValidationRuleOut, response_model_exclude_none=True)
def replace_rule(
    connection_id: int, rule_id: RuleId, body: RuleBody, admin: Admin, session: SessionDep
) -> Any:
    """Replace a rule with a new one (same id and position)."""
    try:
        rule = ValidationRuleService(session, actor=admin.actor).replace(
            connection_id, rule_id, body
        )
    except InvalidValidationRule as exc:
        return _refused(session, exc)
    except LookupError as exc:
        raise _missing(exc) from None
    return rule_view(rule)


@router.patch("/{rule_id}", response_model=ValidationRuleOut, response_model_exclude_none=True)
def update_rule(
    connection_id: int, rule_id: RuleId, body: PatchBody, admin: Admin, session: SessionDep
) -> Any:
    """Change some fields (e.g. `{"enabled": false}` to turn the rule off)."""
    service = ValidationRuleService(session, actor=admin.actor)
    try:
        rule = service.update(connection_id, rule_id, body.model_dump(exclude_unset=True))
    except InvalidValidationRule as exc:
        return _refused(session, exc)
    except LookupError as exc:
        raise _missing(exc) from None
    return rule_view(rule)


@router.delete("/{rule_id}", status_code=204)
def delete_rule(connection_id: int, rule_id: RuleId, admin: Admin, session: SessionDep
                ) -> None:  # fmt: skip
    """Delete a rule."""
    try:
        ValidationRuleService(session, actor=admin.actor).delete(connection_id, rule_id)
    except LookupError as exc:
        raise _missing(exc) from None
