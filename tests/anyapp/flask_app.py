"""A real Flask + Flask-Login backend, in a thread of the test process (werkzeug's threaded server): a form login
at /login that logs the user in with `login_user` (Flask's signed `session` cookie) and redirects to /dashboard,
sends a wrong password back to /login with a flashed message (the session cookie is set then too), and answers a
form without its fields with a 400 naming them, as a WTForms-validated view does. /api/me is `login_required`
(anonymous: a redirect to the login view, Flask-Login's default). Fault `db` makes the user loader fail (a 500
behind the login)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

USER = "smoke"


def flask_app(password: str, faults: set[str]) -> Any:
    from flask import Flask, flash, jsonify, redirect, request
    from flask_login import LoginManager, UserMixin, current_user, login_required, login_user

    app = Flask("opscheck-flask-login")
    app.secret_key = "PLANTED-flask-secret-3b9d"
    manager = LoginManager(app)
    manager.login_view = "login"

    class User(UserMixin):
        def __init__(self, name: str) -> None:
            self.id = name

    @manager.user_loader
    def load(user_id: str) -> User | None:
        return User(user_id) if user_id == USER else None

    @app.post("/login")
    def login() -> Any:
        missing = {k: ["This field is required."] for k in ("username", "password") if not request.form.get(k)}
        if missing:
            return jsonify(missing), 400
        if "db" in faults:
            raise RuntimeError("could not connect to server: Connection refused")
        if request.form["username"] != USER or request.form["password"] != password:
            flash("Invalid username or password")
            return redirect("/login")
        login_user(User(USER))
        return redirect("/dashboard")

    @app.get("/login")
    def login_page() -> Any:
        return "<form method=post><input name=username><input name=password type=password></form>"

    @app.get("/api/me")
    @login_required
    def me() -> Any:
        return jsonify({"username": current_user.id})

    return app


@contextmanager
def flask_server(password: str, faults: set[str]) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, flask_app(password, faults), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="flask-login", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
