"""The vendors HoloVitals speaks to, as the dashboard and the API see them.

Entry points read vendor facts (each vendor's profile, the choices of a parameter, the
least-privilege scopes, the base URL a tenant's parameters make) here rather than from the
adapters, so dependencies keep flowing one way: entry points -> services -> adapters.
"""

from __future__ import annotations

import sys

from ..adapters import ConfigurationError
from ..adapters import connect as _connect
from ..adapters.profile import VendorProfile
from ..adapters.registry import ADAPTERS

__all__ = ["VendorProfile", "base_url_from", "default_scopes", "names", "param_choices", "profile"]


def names() -> list[str]:
    """Every vendor the registry knows, in the registry's order."""
    return list(ADAPTERS)


def profile(vendor: str) -> VendorProfile | None:
    """The vendor's profile (documented caps, auth methods, form fields), if it is known."""
    cls = ADAPTERS.get(vendor)
    return cls.PROFILE if cls is not None else None


def param_choices(vendor: str, name: str) -> tuple[str, ...]:
    """The choices of a vendor parameter, when its adapter module publishes them (NextGen's
    `PRODUCTS` for `product`); empty for free text."""
    module = sys.modules[ADAPTERS[vendor].__module__]
    choices = getattr(module, f"{name.upper()}S", None)
    return tuple(choices) if isinstance(choices, dict) else ()


def default_scopes(vendor_profile: VendorProfile) -> list[str]:
    """Least-privilege system scopes: read each type, write only what the vendor takes."""
    return _connect.default_scopes(vendor_profile)


def base_url_from(template: str, params: dict[str, str]) -> str | None:
    """The base URL a template makes from a tenant's parameters; None when one is missing."""
    try:
        return _connect.render(template, params, what="the base URL")
    except ConfigurationError:
        return None
