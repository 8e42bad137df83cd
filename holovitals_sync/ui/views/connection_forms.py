"""The add/edit connection form, driven by each vendor's adapter profile.

The UI renders whatever `form_fields` returns and sends the raw strings back to
`parse_form`, which answers with a `ConnectionIn`/`ConnectionPatch` or field-level messages.
Nothing here knows a vendor by name: the profile's `admin_fields`, `auth_methods` and
`base_url_template` decide. Secrets are write-only: a field's value is never filled in from
storage, and an empty secret on edit keeps the stored one.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter
from typing import Any

from pydantic import ValidationError

from ...models import AuthMethod, EHRConnection, Vendor
from ...services import labels, vendors
from ...services.connections import ConnectionIn, ConnectionPatch

SECRET_METHODS = (AuthMethod.CLIENT_SECRET_BASIC, AuthMethod.CLIENT_SECRET_POST,
                  AuthMethod.BEARER)  # fmt: skip
# Admin fields that are not vendor parameters (the rest land in `vendor_params`).
CORE_FIELDS = {"base_url", "client_id", "auth_method", "client_secret", "private_key"}
# Vendor parameters that only some features need (group export), so they may stay blank.
OPTIONAL_PARAMS = {"group_id"}
LABELS = {
    "name": "Name",
    "base_url": "FHIR base URL",
    "client_id": "Client id",
    "auth_method": "Authentication",
    "client_secret": "Client secret",
    "scopes": "Scopes",
}
AUTH_LABELS = {
    AuthMethod.SMART_BACKEND: "SMART Backend Services (private key JWT)",
    AuthMethod.CLIENT_SECRET_BASIC: "Client secret (HTTP Basic)",
    AuthMethod.CLIENT_SECRET_POST: "Client secret (form post)",
    AuthMethod.BEARER: "Static bearer token",
    AuthMethod.NONE: "No authentication",
}
OPTION_LABELS = {method.value: label for method, label in AUTH_LABELS.items()}
EXAMPLE_BASE_URL = "https://fhir.hospital.example/r4"
Field = dict[str, str]  # what the UI renders: every value a string


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # text, url, secret, select
    required: bool
    help: str = ""
    placeholder: str = ""
    options: tuple[str, ...] = ()
    auth: tuple[str, ...] = ()  # shown only for these auth methods (empty: always)


def vendor_options() -> list[dict[str, str]]:
    """Every vendor the registry knows, as (value, label) for the vendor picker."""
    return [{"value": name, "label": _profile(name).display_name} for name in vendors.names()]


def _profile(vendor: str) -> vendors.VendorProfile:
    found = vendors.profile(vendor)
    if found is None:
        raise KeyError(vendor)
    return found


def _param_options(vendor: str, name: str) -> tuple[str, ...]:
    # A parameter with published choices gets a picker instead of free text.
    return vendors.param_choices(vendor, name)


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def _template_params(template: str) -> list[str]:
    return [n for _, n, _, _ in Formatter().parse(template) if n and n != "base_url"]


def _base_url_shown(vendor: str) -> bool:
    profile = _profile(vendor)
    return "base_url" in profile.admin_fields or profile.base_url_template == "{base_url}"


def field_specs(vendor: str) -> list[FieldSpec]:
    """The fields this vendor's profile asks for, in the profile's order."""
    profile = _profile(vendor)
    methods = tuple(m.value for m in profile.auth_methods)
    secret_for = tuple(m.value for m in SECRET_METHODS if m in profile.auth_methods)
    specs = [FieldSpec("name", "text", True, "How this connection is shown everywhere")]
    template = profile.base_url_template
    if _base_url_shown(vendor):
        fixed = not _template_params(template) and template != "{base_url}"
        # A bare "{base_url}" template (any FHIR server) is no hint: show an example instead.
        hint = "" if fixed else EXAMPLE_BASE_URL if template == "{base_url}" else template
        specs.append(FieldSpec("base_url", "url", True, "The EHR's FHIR R4 endpoint", hint))
    specs.append(FieldSpec("auth_method", "select", True, "", options=methods))
    wanted = [f.strip() for item in profile.admin_fields for f in item.split(" or ")]
    in_url = [] if _base_url_shown(vendor) else _template_params(template)
    client_for = tuple(m for m in methods if m not in (AuthMethod.NONE, AuthMethod.BEARER))
    for name in dict.fromkeys([*wanted, *in_url]):
        if name == "client_id":
            specs.append(
                FieldSpec(
                    "client_id",
                    "text",
                    True,
                    "Issued when the app was registered",
                    auth=client_for if client_for != methods else (),
                )
            )
        elif name == "client_secret" and secret_for:
            specs.append(FieldSpec("client_secret", "secret", True, auth=secret_for))
        elif name not in CORE_FIELDS:
            help_text = (
                "Needed for bulk export only"
                if name in OPTIONAL_PARAMS
                else f"Part of the base URL {template}"
                if name in in_url
                else ""
            )
            options = _param_options(vendor, name)
            specs.append(
                FieldSpec(
                    name,
                    "select" if options else "text",
                    name not in OPTIONAL_PARAMS,
                    help_text,
                    options=options,
                )
            )
    specs.append(FieldSpec("scopes", "text", True, "Space-separated SMART system scopes"))
    return specs


def initial_values(vendor: str, row: EHRConnection | None = None) -> dict[str, str]:
    """The form's starting values: the row's settings (never a secret) or the vendor defaults."""
    profile = _profile(vendor)
    if row is not None:
        params = {k: str(v) for k, v in (row.vendor_params or {}).items()}
        return {"name": row.name, "base_url": row.base_url, "client_id": row.client_id,
                "auth_method": row.auth_method.value, "client_secret": "", "scopes": row.scopes,
                **params}  # fmt: skip
    template = profile.base_url_template
    fixed = not _template_params(template) and template != "{base_url}"
    values = {"name": "", "base_url": template if fixed else "", "client_id": "",
              "auth_method": profile.auth_methods[0].value, "client_secret": "",
              "scopes": " ".join(vendors.default_scopes(profile))}  # fmt: skip
    for spec in field_specs(vendor):
        if spec.options and spec.name not in values:
            values[spec.name] = spec.options[0]
    return values


def form_fields(
    vendor: str, values: dict[str, str], errors: dict[str, str], *, has_secret: bool = False
) -> list[Field]:
    """The fields to render now (secret fields only for the chosen auth method)."""
    method = values.get("auth_method", "")
    shown = []
    for spec in field_specs(vendor):
        if spec.auth and method not in spec.auth:
            continue
        help_text = spec.help
        if spec.kind == "secret":
            help_text = "Stored encrypted, never shown again" + (
                "; leave blank to keep the stored one" if has_secret else ""
            )
        shown.append({
            "name": spec.name, "label": _label(spec.name), "kind": spec.kind,
            "required": "yes" if spec.required and not (spec.kind == "secret" and has_secret)
            else "",
            "help": help_text, "placeholder": spec.placeholder,
            "options": "|".join(spec.options), "value": "" if spec.kind == "secret"
            else values.get(spec.name, ""),
            "error": errors.get(spec.name, ""),
        })  # fmt: skip
    return shown


def auth_note(vendor: str, values: dict[str, str]) -> str:
    """What the administrator must do besides the form for the chosen auth method."""
    if values.get("auth_method") != AuthMethod.SMART_BACKEND.value:
        return ""
    profile = _profile(vendor)
    where = ("register this connection's JWKS URL with the EHR" if profile.jwks_url_required
             else "register the public JWKS (or its URL) with the EHR")  # fmt: skip
    return f"After saving, generate a key pair ({', '.join(profile.signing_algs)}) and {where}."


def _field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = error["loc"]
        name = (
            str(loc[1])
            if loc and loc[0] == "vendor_params" and len(loc) > 1
            else (str(loc[0]) if loc else "name")
        )
        errors.setdefault(name, labels.field_message(error))
    return errors


def _collect(
    vendor: str, values: dict[str, str], *, has_secret: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted fields as ConnectionIn keys, plus 'required' messages."""
    data: dict[str, Any] = {"vendor_params": {}}
    errors: dict[str, str] = {}
    method = values.get("auth_method", "")
    for spec in field_specs(vendor):
        if spec.auth and method not in spec.auth:
            continue
        value = values.get(spec.name, "").strip()
        if spec.kind == "secret" and not value and has_secret:
            continue  # blank keeps the stored secret
        if spec.required and not value:
            errors[spec.name] = "Required"
        if spec.options and value and value not in spec.options:
            errors[spec.name] = f"Choose one of {', '.join(spec.options)}"
        if spec.name in LABELS or spec.name == "base_url":
            if value or spec.kind != "secret":
                data[spec.name] = value
        elif value:
            data["vendor_params"][spec.name] = value
    return data, errors


def _base_url(vendor: str, data: dict[str, Any], errors: dict[str, str]) -> None:
    """Vendors whose URL is a template (tenant in the path) get it rendered from the params."""
    if _base_url_shown(vendor):
        return
    template = _profile(vendor).base_url_template
    url = vendors.base_url_from(template, data["vendor_params"])
    if url is not None:
        data["base_url"] = url
        return
    for name in _template_params(template):
        if not data["vendor_params"].get(name):
            errors[name] = "Required (part of the base URL)"


def parse_form(
    vendor: str, values: dict[str, str], *, row: EHRConnection | None = None
) -> tuple[ConnectionIn | ConnectionPatch | None, dict[str, str]]:
    """The form's strings as a create (row None) or a patch; or messages per field."""
    if vendors.profile(vendor) is None:
        return None, {"vendor": "Choose a vendor"}
    has_secret = row is not None and row.credentials_encrypted is not None
    data, errors = _collect(vendor, values, has_secret=has_secret)
    _base_url(vendor, data, errors)
    if row is not None:
        # Keep parameters the form does not show (inbound webhook settings and the like).
        shown = {s.name for s in field_specs(vendor)}
        kept = {k: v for k, v in (row.vendor_params or {}).items() if k not in shown}
        data["vendor_params"] = {**kept, **data["vendor_params"]}
    try:
        if row is None:
            parsed: ConnectionIn | ConnectionPatch = ConnectionIn(vendor=Vendor(vendor), **data)
        else:
            parsed = ConnectionPatch(**data)
    except ValidationError as exc:
        found = _field_errors(exc)
        if not _base_url_shown(vendor) and errors:
            found.pop("base_url", None)  # the missing parameter is named instead
        return None, {**found, **errors}
    return (None, errors) if errors else (parsed, {})
