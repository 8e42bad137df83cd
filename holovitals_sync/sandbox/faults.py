"""Fault injection: deterministic misbehaviour switched per run or per request.

Calls are counted from the moment faults were last set, so "every Nth call" is exact and a
test can predict which request fails. Per-request faults come from the header
``X-Sandbox-Fault``, a comma-separated list of ``key[=value]`` items:

    latency_ms=200, status=503, status=429, retry_after=0.2, drop, malformed[=json|bundle],
    expire_token, truncated_ndjson
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

FAULT_HEADER = "x-sandbox-fault"


class FaultConfig(BaseModel):
    """Run-wide faults; 0 / False switches a fault off."""

    latency_ms: int = Field(0, ge=0)
    rate_limit_every: int = Field(0, ge=0)  # every Nth FHIR call answers 429
    retry_after: float = Field(1.0, ge=0)  # seconds in Retry-After of injected 429/503
    error_every: int = Field(0, ge=0)  # every Nth FHIR call answers error_status
    error_status: int = Field(503, ge=500, le=599)
    storm: int = Field(0, ge=0)  # the next K FHIR calls answer 429
    expire_token_after: int = Field(0, ge=0)  # after N calls every issued token is invalid
    malformed_page: int = Field(0, ge=0)  # the Kth search page (1-based) is garbage
    malformed_kind: Literal["json", "bundle"] = "json"
    drop_connection_every: int = Field(0, ge=0)  # every Nth call: connection closed, no answer
    truncated_ndjson: bool = False  # export files are cut mid-line
    # The token endpoint normally escapes faults; True counts it like a FHIR call (e.g. a
    # vendor whose rate limit covers token requests too).
    token_endpoint_faults: bool = False


@dataclass
class FaultAction:
    """What to do to one request."""

    latency_ms: int = 0
    status: int | None = None
    retry_after: float = 1.0
    drop: bool = False
    malformed_kind: str | None = None
    truncated_ndjson: bool = False
    expire_tokens: bool = False
    reject_token: bool = False
    kind: str | None = None  # name of the fault for stats


def format_retry_after(seconds: float) -> str:
    # Integers stay integers ("1"); fractions are kept ("0.2") because tests use them.
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def parse_fault_header(spec: str) -> FaultAction:
    """Parse ``X-Sandbox-Fault``; unknown items raise ValueError (answered with 400)."""
    action = FaultAction()
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        key, _, value = item.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if key in ("latency_ms", "latency"):
            action.latency_ms = int(value)
        elif key == "status":
            action.status = int(value)
            action.kind = f"header_status_{value}"
        elif key == "retry_after":
            action.retry_after = float(value)
        elif key == "drop":
            action.drop = True
            action.kind = "drop_connection"
        elif key == "malformed":
            action.malformed_kind = value or "json"
        elif key == "expire_token":
            action.reject_token = True
        elif key == "truncated_ndjson":
            action.truncated_ndjson = True
        else:
            raise ValueError(f"unknown fault item {key!r}")
    return action


class FaultState:
    """Run-wide fault settings plus the counters that make them deterministic."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.set(config or FaultConfig())

    def set(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self.calls = 0
            self.search_pages = 0
            self.storm_left = config.storm
            self.tokens_expired = False

    def clear(self) -> None:
        self.set(FaultConfig())

    def next_call(self) -> FaultAction:
        """Count one FHIR call and decide its fault from the run-wide settings."""
        with self._lock:
            self.calls += 1
            n, cfg = self.calls, self.config
            action = FaultAction(
                latency_ms=cfg.latency_ms,
                retry_after=cfg.retry_after,
                truncated_ndjson=cfg.truncated_ndjson,
            )
            if cfg.expire_token_after and n > cfg.expire_token_after and not self.tokens_expired:
                self.tokens_expired = True
                action.expire_tokens = True
            if cfg.drop_connection_every and n % cfg.drop_connection_every == 0:
                action.drop, action.kind = True, "drop_connection"
            elif self.storm_left > 0:
                self.storm_left -= 1
                action.status, action.kind = 429, "storm"
            elif cfg.rate_limit_every and n % cfg.rate_limit_every == 0:
                action.status, action.kind = 429, "rate_limit"
            elif cfg.error_every and n % cfg.error_every == 0:
                action.status, action.kind = cfg.error_status, "error"
            return action

    def next_search_page(self) -> str | None:
        """Count one search page served; returns the garbage kind if this page is the bad one."""
        with self._lock:
            self.search_pages += 1
            cfg = self.config
            if cfg.malformed_page and self.search_pages == cfg.malformed_page:
                return cfg.malformed_kind
            return None


def merge(run: FaultAction, header: FaultAction) -> FaultAction:
    """A per-request header overrides the run-wide decision where it says something."""
    return FaultAction(
        latency_ms=header.latency_ms or run.latency_ms,
        status=header.status if header.status is not None else run.status,
        retry_after=header.retry_after if header.status is not None else run.retry_after,
        drop=header.drop or run.drop,
        malformed_kind=header.malformed_kind or run.malformed_kind,
        truncated_ndjson=header.truncated_ndjson or run.truncated_ndjson,
        expire_tokens=run.expire_tokens,
        reject_token=header.reject_token,
        kind=header.kind or run.kind,
    )
