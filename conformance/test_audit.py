"""Audit: per-user event lists and single events with before/after details."""

import uuid
from datetime import datetime

from support import covers, error, new_email, new_user, ok


@covers("list_user_audit_events")
def test_list_user_events_newest_first(api):
    token, profile = new_user(api)
    ok(api.get_user("token", token))
    ok(api.update_user("token", token, {"name": "Audited"}))
    listed = ok(api.list_user_audit_events("token", token, 0, 10))
    rows = listed["rows"]
    titles = [row["title"] for row in rows]
    # Create, get, update; the listing itself may be audited too.
    assert {"UserCreate", "UserGet", "UserUpdate"} <= set(titles), titles
    assert titles.index("UserUpdate") < titles.index("UserGet") < titles.index("UserCreate"), titles
    assert listed["total"] >= 3
    for row in rows:
        assert isinstance(row["auditeventuuid"], str) and len(row["auditeventuuid"]) == 36
        assert isinstance(row["eventtype"], str)
        assert isinstance(row["title"], str)
        datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00"))
    by_title = {row["title"]: row for row in rows}
    assert by_title["UserGet"]["eventtype"] == "read"
    assert by_title["UserUpdate"]["eventtype"] == "update"


@covers("list_user_audit_events")
def test_list_user_events_pages(api):
    token, _ = new_user(api)
    for _ in range(4):
        ok(api.get_user("token", token))
    first = ok(api.list_user_audit_events("token", token, 0, 2))
    second = ok(api.list_user_audit_events("token", token, 2, 2))
    assert len(first["rows"]) == 2 and len(second["rows"]) == 2
    assert first["total"] >= 5
    # Listing is audited too, so each call adds an event on top: check the pages against one
    # full listing instead of against each other.
    everything = [r["auditeventuuid"] for r in ok(api.list_user_audit_events("token", token, 0, 100))["rows"]]
    ids1 = [r["auditeventuuid"] for r in first["rows"]]
    ids2 = [r["auditeventuuid"] for r in second["rows"]]
    at1, at2 = everything.index(ids1[0]), everything.index(ids2[0])
    assert everything[at1 : at1 + 2] == ids1
    assert everything[at2 : at2 + 2] == ids2
    assert at2 > at1
    error(api, api.list_user_audit_events("email", new_email()), 404, "The user record was not found")


@covers("get_audit_event")
def test_get_event_shows_the_change(api):
    token, _ = new_user(api)
    ok(api.update_user("token", token, {"name": "After"}))
    rows = ok(api.list_user_audit_events("token", token, 0, 10))["rows"]
    update = next(row for row in rows if row["title"] == "UserUpdate")
    event = ok(api.get_audit_event(update["auditeventuuid"]))
    assert event["auditeventuuid"] == update["auditeventuuid"]
    assert event["title"] == "UserUpdate"
    assert event["eventtype"] == "update"
    details = event["details"]
    assert isinstance(details, dict)
    text = repr(details)
    assert "Conformance" in text and "After" in text, details
    error(api, api.get_audit_event(str(uuid.uuid4())), 404, "The audit event was not found")
    error(api, api.get_audit_event("not-a-uuid"), 400, "Bad UUID")


@covers("list_user_audit_events", "get_audit_event")
def test_denied_without_a_valid_token(api, bad_api, anon_api):
    token, _ = new_user(api)
    some_event = ok(api.list_user_audit_events("token", token))["rows"][0]["auditeventuuid"]
    for c in (bad_api, anon_api):
        error(c, c.list_user_audit_events("token", token), 403, "Access denied")
        error(c, c.get_audit_event(some_event), 403, "Access denied")
