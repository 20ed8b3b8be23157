"""User reports: everything the vault holds on one user, as JSON and as an HTML page."""

import json
import uuid

from support import covers, error, new_email, new_user, ok, pending, unique

pytestmark = pending


def populated_user(api, **extra):
    """A user with a profile, app data, an agreement and a session; returns what to look for."""
    marker = unique("Report")
    token, profile = new_user(api, city=marker, **extra)
    app = unique("app_")
    ok(api.create_app_data("token", token, app, {"plan": f"{marker}-plan"}))
    brief = unique("basis-")
    ok(api.create_legal_basis({"brief": brief}))
    ok(api.accept_agreement("token", token, brief, {"referencecode": f"{marker}-ref"}))
    session = str(uuid.uuid4())
    ok(api.upsert_session(session, {"token": token, "step": f"{marker}-step"}))
    return token, profile, {"marker": marker, "app": app, "brief": brief, "session": session}


@covers("get_user_report")
def test_report_holds_profile_app_data_agreements_and_sessions(api):
    token, profile, seen = populated_user(api)
    report = ok(api.get_user_report("token", token))["report"]
    assert isinstance(report, dict), report
    text = json.dumps(report)
    for value in (
        profile["email"],
        seen["marker"],
        seen["app"],
        f"{seen['marker']}-plan",
        seen["brief"],
        f"{seen['marker']}-ref",
        seen["session"],
        f"{seen['marker']}-step",
    ):
        assert value in text, (value, report)
    # The same report by any identity.
    assert json.dumps(ok(api.get_user_report("email", profile["email"]))["report"]) != "{}"


@covers("get_user_report")
def test_report_lists_open_requests(api):
    token, _, _ = populated_user(api)
    rid = ok(api.request_user_update("token", token, {"name": "Asked"}))["requestuuid"]
    report = ok(api.get_user_report("token", token))["report"]
    assert rid in json.dumps(report), report


@covers("get_user_report", "get_user_html_report")
def test_reports_for_unknown_users_and_wrong_tokens(api, bad_api, anon_api):
    error(api, api.get_user_report("email", new_email()), 404, "The user record was not found")
    error(api, api.get_user_html_report("email", new_email()), 404, "The user record was not found")
    token, _ = new_user(api)
    for c in (bad_api, anon_api):
        error(c, c.get_user_report("token", token), 403, "Access denied")
        error(c, c.get_user_html_report("token", token), 403, "Access denied")


@covers("get_user_html_report")
def test_html_report_escapes_values(api):
    token, profile, seen = populated_user(api, name="<script>alert(1)</script>")
    html = ok(api.get_user_html_report("token", token))["html"]
    assert isinstance(html, str)
    assert "&lt;script&gt;alert(1)" in html
    assert "<script>alert(1)" not in html
    assert profile["email"] in html
    assert seen["marker"] in html
    assert seen["brief"] in html
