"""The sign-in page: the only page a visitor without a session can open.

Its form is posted by the browser to `POST /api/auth/login` (a navigation, not a Reflex
event): the answer sets the HttpOnly session cookie and sends the browser to the page asked
for, or back here with `?error=`.
"""

from __future__ import annotations

import reflex as rx

from ..components.layout import api_form
from ..state.sign_in import SignInState


def _form() -> rx.Component:
    return api_form(
        "/api/auth/login",
        rx.vstack(
            rx.input(placeholder="Username", name="username", id="signin-username",
                     auto_complete="username", required=True, auto_focus=True, width="100%"),
            rx.input(placeholder="Password", name="password", id="signin-password",
                     type="password", auto_complete="current-password", required=True,
                     width="100%"),
            rx.el.input(type="hidden", name="next", value=SignInState.next_path),
            rx.cond(
                SignInState.error != "",
                rx.callout(SignInState.error, icon="triangle-alert", color_scheme="red",
                           id="signin-error", width="100%"),
            ),
            rx.button("Sign in", type="submit", id="signin-submit", width="100%"),
            spacing="3",
            width="100%",
        ),
    )  # fmt: skip


def sign_in() -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.icon("heart-pulse", size=26, color=rx.color("accent", 10)),
                    rx.heading("HoloVitals Sync", size="5"),
                    align="center",
                ),
                rx.text("Sign in to the integration console", size="2", color_scheme="gray"),
                # The form's action and `next` come from the browser and the page's state:
                # it appears once they are there (a prerendered page would keep the build's).
                rx.cond(rx.State.is_hydrated, _form(), rx.spinner(size="3")),
                spacing="3",
                width="100%",
            ),
            width="22em",
            size="3",
        ),
        min_height="100vh",
        background_color=rx.color("gray", 2),
    )
