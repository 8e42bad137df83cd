"""The sign-in page's state: what its URL says (where to go next, why the last try failed).

The page itself posts an HTML form to `POST /api/auth/login`, whose answer sets the HttpOnly
session cookie and sends the browser on (api/auth.py); no event of this state sees a password.
"""

from __future__ import annotations

import reflex as rx

from ...services import labels
from ...services.auth import REFUSED

# The error codes `POST /api/auth/login` sends a refused form back with.
MESSAGES = {
    "refused": labels.sentence(REFUSED),
    "missing": "Enter your username and password.",
    "busy": "Sign-in is busy; try again in a moment.",
}


class SignInState(rx.State):
    @rx.var
    def error(self) -> str:
        """The refusal to show, from `?error=` ("" when there is none)."""
        query = self.router.url.query_parameters
        code = str(query.get("error", ""))
        if code == "too_many":
            retry = str(query.get("retry", ""))
            wait = f"in {retry} s" if retry.isdigit() and len(retry) <= 5 else "later"
            return f"Too many sign-in attempts; try again {wait}."
        return MESSAGES.get(code, "Sign-in failed; try again." if code else "")

    @rx.var
    def next_path(self) -> str:
        """The page to open once signed in (the API takes only a path on the dashboard)."""
        return str(self.router.url.query_parameters.get("next", "/"))
