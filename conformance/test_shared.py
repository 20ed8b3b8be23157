"""Shared records: a time-limited view of selected fields, read without authentication."""

import re
import uuid

from support import covers, error, new_email, new_user, ok, unique


@covers("create_shared_record", "get_shared_record")
def test_share_selected_profile_fields(api, anon_api, bad_api):
    token, profile = new_user(api, city="Leeds")
    result = ok(api.create_shared_record("token", token, {"fields": "name,city", "partner": "acme", "finaltime": "1d"}))
    record = result["recorduuid"]
    assert re.match(r"^[0-9a-f-]{36}$", record)
    # Public: no token needed, and a client that sends some token is not refused.
    for client in (anon_api, bad_api, api):
        assert ok(client.get_shared_record(record))["data"] == {"name": "Conformance", "city": "Leeds"}


@covers("create_shared_record", "get_shared_record")
def test_share_whole_profile_and_app_data(api, anon_api):
    token, profile = new_user(api)
    # No options: the client sends no fields, the whole profile is shared.
    whole = ok(api.create_shared_record("email", profile["email"]))["recorduuid"]
    assert ok(anon_api.get_shared_record(whole))["data"] == profile
    app = unique("app_")
    ok(api.create_app_data("token", token, app, {"plan": "gold", "card": "secret"}))
    shared = ok(api.create_shared_record("token", token, {"appname": app, "fields": "plan"}))["recorduuid"]
    assert ok(anon_api.get_shared_record(shared))["data"] == {"plan": "gold"}


@covers("create_shared_record", "get_shared_record")
def test_shared_record_errors(api, anon_api, bad_api):
    token, _ = new_user(api)
    error(api, api.create_shared_record("email", new_email()), 404, "The user record was not found")
    error(api, api.create_shared_record("token", token, {"appname": "bad name!"}), 400)
    error(bad_api, bad_api.create_shared_record("token", token), 403, "Access denied")
    error(anon_api, anon_api.create_shared_record("token", token), 403, "Access denied")
    error(anon_api, anon_api.get_shared_record(str(uuid.uuid4())), 404, "The shared record was not found")
    error(anon_api, anon_api.get_shared_record("not-a-uuid"), 400, "Bad UUID")
