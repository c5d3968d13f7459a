"""The operator's sign-in: a Bearer token for scripts; for a browser, a throttled token form that sets a signed,
expiring session cookie (itsdangerous) carrying the CSRF token every form of /stats must send back.

The signing key is derived from SERVE_ADMIN_TOKEN, so every worker (and every server of a fleet) accepts
the same cookie, and changing the token signs everyone out.
"""

import hashlib
import hmac
import os
import secrets

from flask import Response, current_app, g, redirect, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import BadRequest, Forbidden, NotFound, TooManyRequests, Unauthorized

from serve.feedback.limits import RateLimited

COOKIE_NAME = "kiosk_operator"
SESSION_SECONDS = 8 * 3600
SIGN_IN_FORM_SECONDS = 3600  # a sign-in form older than this is refused (sign in again)
NO_STORE = "no-store"


def admin_token():
    """The configured token; without one the operator routes do not exist (404)."""
    token = current_app.extensions["feedback"].admin_token
    if not token:
        raise NotFound("the operator routes are off: no SERVE_ADMIN_TOKEN is configured")
    return token


def serializer(purpose):
    # A key of its own, derived from the token: the cookie never carries the token or a digest usable as it.
    key = hmac.new(admin_token().encode(), b"digit-kiosk operator session key", hashlib.sha256).digest()
    return URLSafeTimedSerializer(key, salt=f"digit-kiosk {purpose}")


def session():
    """The signed-in session {"csrf": ...} from the cookie, or None (absent, forged or expired)."""
    if "operator_session" not in g:
        value = request.cookies.get(COOKIE_NAME)
        try:
            g.operator_session = serializer("session").loads(value, max_age=SESSION_SECONDS) if value else None
        except BadSignature:  # SignatureExpired is one: an expired cookie counts as none
            g.operator_session = None
    return g.operator_session


def bearer_given():
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


def is_operator():
    """Whether the request has the token (Authorization: Bearer) or a valid session cookie."""
    token = admin_token()
    given = bearer_given()
    if given is not None:
        return hmac.compare_digest(given.encode(), token.encode())
    return session() is not None


def require_operator():
    if not is_operator():
        raise Unauthorized("this route needs Authorization: Bearer <SERVE_ADMIN_TOKEN>, or signing in at /stats",
                           www_authenticate=WWWAuthenticate("bearer"))


def require_form_operator():
    """An operator's form post: the Bearer token, or the session cookie with its CSRF token in the form."""
    require_operator()
    if bearer_given() is not None:
        return  # a script's header is not sent by a browser on its own: no cross-site forgery to guard
    sent = request.form.get("csrf", "")
    if not hmac.compare_digest(sent.encode(), session()["csrf"].encode()):
        raise Forbidden("the form's CSRF token is missing or stale; reload /stats and try again")


def csrf_token():
    """The CSRF token for the forms of the signed-in page ("" for a Bearer request, which needs none)."""
    current = session()
    return current["csrf"] if current else ""


def sign_in():
    """The token form: throttled per client; a right token sets the session cookie and goes back to /stats."""
    admin_token()
    try:
        current_app.extensions["feedback"].sign_in_limits.check(request.remote_addr)
    except RateLimited as error:
        raise TooManyRequests(f"{error}; wait before trying again", retry_after=error.retry_after) from None
    try:
        serializer("sign-in form").loads(request.form.get("form", ""), max_age=SIGN_IN_FORM_SECONDS)
    except BadSignature:
        return login_page("That form is stale: sign in again.")
    if not hmac.compare_digest(request.form.get("token", "").encode(), admin_token().encode()):
        return login_page("That is not the admin token.")
    value = serializer("session").dumps({"csrf": secrets.token_urlsafe(24)})
    response = redirect("/stats", code=303)
    # Secure whenever the visitor's connection is TLS, also when a trusted proxy ended it (X-Forwarded-Proto).
    response.set_cookie(COOKIE_NAME, value, max_age=SESSION_SECONDS, path="/", httponly=True, samesite="Strict",
                        secure=request.is_secure)
    return response


def sign_out():
    require_form_operator()
    response = redirect("/stats", code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Strict", secure=request.is_secure)
    return response


def login_page(message):
    form = serializer("sign-in form").dumps(secrets.token_urlsafe(8))
    response = Response(render_template("login.html", message=message, form=form), status=401, mimetype="text/html")
    response.headers["WWW-Authenticate"] = "Bearer"
    response.headers["Cache-Control"] = NO_STORE
    return response


def read_admin_token(config):
    """SERVE_ADMIN_TOKEN exactly as written (Flask would read a token such as 12e3 as a number)."""
    token = config.get("ADMIN_TOKEN")
    if token is not None and not isinstance(token, str):
        token = os.environ.get("SERVE_ADMIN_TOKEN", str(token))
    return token or None


def checked_ids(form, limit):
    """The entry ids ticked on the review form."""
    ids = form.getlist("id")
    if not ids or len(ids) > limit:
        raise BadRequest(f"tick between 1 and {limit} entries")
    return ids
