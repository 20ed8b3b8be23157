"""Issue 4: deleting a user leaves no readable trace of it anywhere the client can look."""

import json
import uuid

from support import covers, error, ok, unique


@covers(
    "delete_user",
    "get_user",
    "get_app_data",
    "list_app_data_names",
    "list_app_data_versions",
    "get_user_agreement",
    "list_user_agreements",
    "get_session",
    "list_user_sessions",
    "get_shared_record",
    "list_user_audit_events",
    "get_audit_event",
)
def test_deleted_user_leaves_no_readable_trace(api, anon_api):
    marker = unique("Erasable")
    email = f"{marker.lower()}@example.com"
    profile = {"email": email, "login": marker.lower(), "name": marker}
    token = ok(api.create_user(profile))["token"]
    app = unique("app_")
    ok(api.create_app_data("token", token, app, {"secret": marker}))
    ok(api.update_app_data("token", token, app, {"more": marker}))
    brief = unique("basis-")
    ok(api.create_legal_basis({"brief": brief}))
    ok(api.accept_agreement("token", token, brief, {"referencecode": marker}))
    session = str(uuid.uuid4())
    ok(api.upsert_session(session, {"email": email, "note": marker}))
    record = ok(api.create_shared_record("token", token, {"fields": "name"}))["recorduuid"]
    assert ok(anon_api.get_shared_record(record))["data"] == {"name": marker}
    events = [row["auditeventuuid"] for row in ok(api.list_user_audit_events("token", token, 0, 100))["rows"]]
    assert events

    ok(api.delete_user("token", token))

    for mode, identity in [("token", token), ("email", email), ("login", profile["login"])]:
        error(api, api.get_user(mode, identity), 404, "The user record was not found")
    error(api, api.get_app_data("token", token, app), 404)
    error(api, api.list_app_data_names("token", token), 404)
    error(api, api.list_app_data_versions("token", token, app), 404)
    error(api, api.get_user_agreement("token", token, brief), 404)
    error(api, api.list_user_agreements("token", token), 404)
    error(api, api.get_session(session), 404, "The session record was not found")
    error(api, api.list_user_sessions("email", email), 404)
    shared = anon_api.get_shared_record(record)
    assert shared["status"] == "error", shared
    assert marker not in json.dumps(shared)
    error(api, api.list_user_audit_events("token", token), 404)
    # Audit events outlive the user but can no longer show its data.
    for event in events:
        answer = api.get_audit_event(event)
        assert marker not in json.dumps(answer), answer
        assert email not in json.dumps(answer), answer

    # A new user with the same email starts empty: nothing comes back from the old one.
    fresh = ok(api.create_user({"email": email}))["token"]
    assert fresh != token
    error(api, api.get_app_data("token", fresh, app), 404)
    assert ok(api.list_app_data_names("token", fresh))["apps"] == []
    assert ok(api.list_user_agreements("token", fresh))["rows"] == []
    assert ok(api.list_user_sessions("token", fresh))["rows"] == []
