"""The Reflex app: registers the pages and mounts the REST/webhook API."""

from __future__ import annotations

import reflex as rx
from starlette.types import ASGIApp

from .api import create_api, receiver_ahead
from .ui.pages import alerts, audit, conflicts_tab, connections, records, webhooks_tab
from .ui.pages import dashboard as dashboard_page
from .ui.pages.sign_in import sign_in
from .ui.state.session import SIGN_IN_ROUTE, SessionState

# route, page, title, on_load (one handler or a list)
PAGES = [
    ("/", dashboard_page.dashboard, "Dashboard", dashboard_page.ON_LOAD),
    (
        "/connections",
        connections.connections_page,
        "Connections",
        connections.ConnectionsState.load,
    ),
    ("/webhooks", webhooks_tab.webhooks_page, "Webhooks", webhooks_tab.ON_LOAD),
    ("/conflicts", conflicts_tab.conflicts_page, "Conflicts", conflicts_tab.ON_LOAD),
    ("/records", records.records_page, "Records", records.ON_LOAD),
    ("/audit", audit.audit_page, "Audit", audit.AuditState.load),
    ("/alerts", alerts.alerts_page, "Alerts", alerts.ON_LOAD),
]

API = create_api()


class HoloVitalsApp(rx.App):
    """Reflex's app, with the webhook receiver served ahead of Reflex's middleware."""

    def __call__(self) -> ASGIApp:  # what the backend server runs
        return receiver_ahead(super().__call__(), API)


# Toasts at the top centre, over the page heading: at the bottom right they covered the
# jobs toolbar (Start sync, the live badge) just when a sync was started from it.
app = HoloVitalsApp(api_transformer=API, toaster=rx.toast.provider(position="top-center"))
app.add_page(sign_in, route=SIGN_IN_ROUTE, title="Sign in · HoloVitals Sync")
for route, page, title, on_load in PAGES:
    # The guard runs first: a visitor without a session is sent to sign in.
    app.add_page(page, route=route, title=f"{title} · HoloVitals Sync",
                 on_load=[SessionState.guard, *(on_load if isinstance(on_load, list)
                                                else [on_load])])  # fmt: skip
