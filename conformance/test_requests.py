"""User requests: changes asked for on a user's behalf, applied only when an admin approves.

Contract §3.6: the *Request operations return a `requestuuid` (an identical open request returns
the same one); `UserRequestListUserRequests` lists `{requestuuid, requesttype}` rows with `total`;
`UserRequestApprove` applies the change, `UserRequestCancel` closes it, both with an optional
reason; acting on a closed request answers 409 "This user request is closed".
"""

import json
import uuid

from support import covers, error, new_email, new_user, ok, pending, unique

pytestmark = pending

CLOSED = "This user request is closed"


def request_uuid(result):
    value = ok(result)["requestuuid"]
    assert isinstance(value, str) and len(value) == 36, result
    return value


def open_requests(api, token):
    listed = ok(api.list_user_requests("token", token, 0, 100))
    return listed, {row["requestuuid"]: row for row in listed["rows"]}


@covers("request_user_update", "approve_user_request", "get_user_request")
def test_update_request_applies_only_on_approval(api):
    token, profile = new_user(api)
    rid = request_uuid(api.request_user_update("token", token, {"name": "Requested", "city": "Leeds"}))
    assert ok(api.get_user("token", token))["profile"] == profile
    request = ok(api.get_user_request(rid))["request"]
    assert isinstance(request, dict) and request, request
    assert request.get("status") == "open", request
    ok(api.approve_user_request(rid, {"reason": "checked by support"}))
    assert ok(api.get_user("token", token))["profile"] == {**profile, "name": "Requested", "city": "Leeds"}
    assert ok(api.get_user_request(rid))["request"].get("status") == "approved"


@covers("request_user_update")
def test_identical_open_request_is_not_duplicated(api):
    token, _ = new_user(api)
    first = request_uuid(api.request_user_update("token", token, {"name": "Same"}))
    second = request_uuid(api.request_user_update("token", token, {"name": "Same"}))
    assert first == second
    listed, rows = open_requests(api, token)
    assert list(rows) == [first]


@covers("request_user_update", "list_user_requests")
def test_list_user_requests(api):
    token, _ = new_user(api)
    app = unique("app_")
    ok(api.create_app_data("token", token, app, {"a": 1}))
    update = request_uuid(api.request_user_update("token", token, {"name": "Listed"}))
    appdata = request_uuid(api.request_app_data_update("token", token, app, {"a": 2}))
    listed, rows = open_requests(api, token)
    assert set(rows) == {update, appdata}
    assert listed["total"] == 2
    for row in rows.values():
        assert isinstance(row["requesttype"], str) and row["requesttype"]
    assert rows[update]["requesttype"] != rows[appdata]["requesttype"]
    page = ok(api.list_user_requests("token", token, 1, 1))
    assert len(page["rows"]) == 1 and page["total"] == 2
    other, _ = new_user(api)
    empty = ok(api.list_user_requests("token", other, 0, 10))
    assert empty["rows"] == [] and empty["total"] == 0
    error(api, api.list_user_requests("email", new_email(), 0, 10), 404, "The user record was not found")


@covers("request_user_patch", "approve_user_request")
def test_patch_request(api):
    token, profile = new_user(api)
    rid = request_uuid(api.request_user_patch("token", token, [{"op": "replace", "path": "/name", "value": "Patched"}]))
    assert ok(api.get_user("token", token))["profile"]["name"] == profile["name"]
    ok(api.approve_user_request(rid))
    assert ok(api.get_user("token", token))["profile"]["name"] == "Patched"


@covers("request_app_data_update", "approve_user_request")
def test_app_data_update_request(api):
    token, _ = new_user(api)
    app = unique("app_")
    ok(api.create_app_data("token", token, app, {"size": "M"}))
    rid = request_uuid(api.request_app_data_update("token", token, app, {"size": "L", "color": "red"}))
    assert ok(api.get_app_data("token", token, app))["appdata"] == {"size": "M"}
    ok(api.approve_user_request(rid))
    assert ok(api.get_app_data("token", token, app))["appdata"] == {"size": "L", "color": "red"}


@covers("request_agreement_cancellation", "approve_user_request")
def test_agreement_cancellation_request(api):
    token, _ = new_user(api)
    brief = unique("basis-")
    ok(api.create_legal_basis({"brief": brief}))
    ok(api.accept_agreement("token", token, brief, {}))
    rid = request_uuid(api.request_agreement_cancellation("token", token, brief))
    assert ok(api.get_user_agreement("token", token, brief))["agreement"]["status"] == "active"
    ok(api.approve_user_request(rid))
    assert ok(api.get_user_agreement("token", token, brief))["agreement"]["status"] != "active"


@covers("cancel_user_request", "get_user_request")
def test_cancel_with_reason(api):
    token, profile = new_user(api)
    rid = request_uuid(api.request_user_update("token", token, {"name": "Never"}))
    ok(api.cancel_user_request(rid, {"reason": "not the account holder"}))
    assert ok(api.get_user("token", token))["profile"] == profile
    request = ok(api.get_user_request(rid))["request"]
    assert request.get("status") in ("canceled", "cancelled"), request
    assert request.get("reason") == "not the account holder", request
    # A new identical request opens a new one: the cancelled one is closed.
    assert request_uuid(api.request_user_update("token", token, {"name": "Never"})) != rid


@covers("approve_user_request", "cancel_user_request")
def test_closed_requests_cannot_be_acted_on(api):
    token, _ = new_user(api)
    approved = request_uuid(api.request_user_update("token", token, {"name": "One"}))
    ok(api.approve_user_request(approved))
    error(api, api.approve_user_request(approved), 409, CLOSED)
    error(api, api.cancel_user_request(approved), 409, CLOSED)
    cancelled = request_uuid(api.request_user_update("token", token, {"name": "Two"}))
    ok(api.cancel_user_request(cancelled))
    error(api, api.approve_user_request(cancelled), 409, CLOSED)
    error(api, api.cancel_user_request(cancelled, {"reason": "again"}), 409, CLOSED)


@covers("get_user_request", "approve_user_request", "cancel_user_request")
def test_unknown_and_malformed_request_ids(api):
    unknown = str(uuid.uuid4())
    error(api, api.get_user_request(unknown), 404)
    error(api, api.approve_user_request(unknown), 404)
    error(api, api.cancel_user_request(unknown), 404)
    error(api, api.get_user_request("not-a-uuid"), 400, "Bad UUID")


@covers(
    "request_user_update",
    "request_user_patch",
    "request_user_deletion",
    "request_app_data_update",
    "request_agreement_cancellation",
)
def test_requests_for_unknown_users(api):
    email = new_email()
    error(api, api.request_user_update("email", email, {"name": "x"}), 404, "The user record was not found")
    error(api, api.request_user_patch("email", email, [{"op": "add", "path": "/a", "value": 1}]), 404)
    error(api, api.request_user_deletion("email", email), 404, "The user record was not found")
    error(api, api.request_app_data_update("email", email, "shop", {"a": 1}), 404)
    error(api, api.request_agreement_cancellation("email", email, "basis-x"), 404)


@covers("request_user_deletion", "approve_user_request", "list_user_requests")
def test_approved_deletion_erases_the_user_and_everything(api, anon_api):
    marker = unique("Forget")
    token, profile = new_user(api, name=marker)
    app = unique("app_")
    ok(api.create_app_data("token", token, app, {"secret": marker}))
    brief = unique("basis-")
    ok(api.create_legal_basis({"brief": brief}))
    ok(api.accept_agreement("token", token, brief, {}))
    session = str(uuid.uuid4())
    ok(api.upsert_session(session, {"token": token, "note": marker}))
    record = ok(api.create_shared_record("token", token, {"fields": "name"}))["recorduuid"]
    rid = request_uuid(api.request_user_deletion("token", token))
    assert request_uuid(api.request_user_deletion("email", profile["email"])) == rid
    # Nothing happens before approval.
    assert ok(api.get_user("token", token))["profile"] == profile
    ok(api.approve_user_request(rid))
    error(api, api.get_user("token", token), 404, "The user record was not found")
    error(api, api.get_user("email", profile["email"]), 404)
    error(api, api.get_app_data("token", token, app), 404)
    error(api, api.list_user_agreements("token", token), 404)
    error(api, api.get_session(session), 404)
    shared = anon_api.get_shared_record(record)
    assert shared["status"] == "error" and marker not in json.dumps(shared), shared
    error(api, api.list_user_requests("token", token, 0, 10), 404)


@covers(
    "request_user_update",
    "request_user_patch",
    "request_user_deletion",
    "request_app_data_update",
    "request_agreement_cancellation",
    "get_user_request",
    "list_user_requests",
    "approve_user_request",
    "cancel_user_request",
)
def test_denied_without_a_valid_token(api, bad_api, anon_api):
    token, profile = new_user(api)
    rid = request_uuid(api.request_user_update("token", token, {"name": "Pending"}))
    for c in (bad_api, anon_api):
        error(c, c.request_user_update("token", token, {"name": "x"}), 403, "Access denied")
        error(c, c.request_user_patch("token", token, [{"op": "add", "path": "/a", "value": 1}]), 403)
        error(c, c.request_user_deletion("token", token), 403, "Access denied")
        error(c, c.request_app_data_update("token", token, "shop", {"a": 1}), 403, "Access denied")
        error(c, c.request_agreement_cancellation("token", token, "basis-x"), 403, "Access denied")
        error(c, c.get_user_request(rid), 403, "Access denied")
        error(c, c.list_user_requests("token", token, 0, 10), 403, "Access denied")
        error(c, c.approve_user_request(rid), 403, "Access denied")
        error(c, c.cancel_user_request(rid), 403, "Access denied")
    assert ok(api.get_user("token", token))["profile"] == profile
    assert ok(api.get_user_request(rid))["request"].get("status") == "open"

