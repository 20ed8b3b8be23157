"""Sessions: caller-chosen UUIDs, bound to a user when the data names one."""

import time
import uuid

from support import covers, error, new_email, new_user, ok


@covers("upsert_session", "get_session")
def test_upsert_and_get_unbound(api):
    sid = str(uuid.uuid4())
    data = {"cart": [1, 2], "theme": "dark"}
    result = ok(api.upsert_session(sid, data))
    assert result["expirationtime"] > time.time()
    got = ok(api.get_session(sid))
    assert got["sessiondata"] == data
    assert "token" not in got
    # Upsert replaces the data.
    ok(api.upsert_session(sid, {"cart": []}))
    assert ok(api.get_session(sid))["sessiondata"] == {"cart": []}


@covers("upsert_session")
def test_upsert_caps_the_lifetime(api):
    # A lifetime beyond the session maximum (1h by default) is capped, not refused.
    sid = str(uuid.uuid4())
    result = ok(api.upsert_session(sid, {"a": 1}, {"finaltime": "24h"}))
    assert result["expirationtime"] <= time.time() + 3600 + 60
    ok(api.upsert_session(str(uuid.uuid4()), {"a": 1}, {"slidingtime": "10m"}))


@covers("upsert_session", "get_session", "list_user_sessions")
def test_sessions_bound_to_a_user(api):
    token, profile = new_user(api)
    s1, s2 = str(uuid.uuid4()), str(uuid.uuid4())
    ok(api.upsert_session(s1, {"email": profile["email"], "step": 1}))
    ok(api.upsert_session(s2, {"token": token, "step": 2}))
    assert ok(api.get_session(s1))["token"] == token
    rows = ok(api.list_user_sessions("login", profile["login"]))["rows"]
    assert {r["sessionuuid"]: r["sessiondata"]["step"] for r in rows} == {s1: 1, s2: 2}
    other, _ = new_user(api)
    assert ok(api.list_user_sessions("token", other))["rows"] == []


@covers("upsert_session", "get_session", "list_user_sessions")
def test_session_errors(api):
    error(api, api.upsert_session("not-a-uuid", {"a": 1}), 400, "Bad UUID")
    error(api, api.upsert_session(str(uuid.uuid4()), "text"), 400, "sessiondata")
    error(api, api.get_session(str(uuid.uuid4())), 404, "The session record was not found")
    error(api, api.get_session("not-a-uuid"), 400, "Bad UUID")
    error(api, api.list_user_sessions("email", new_email()), 404, "The user record was not found")


@covers("delete_session", "get_session", "list_user_sessions")
def test_delete_session(api):
    token, _ = new_user(api)
    sid = str(uuid.uuid4())
    ok(api.upsert_session(sid, {"token": token}))
    ok(api.delete_session(sid))
    error(api, api.get_session(sid), 404, "The session record was not found")
    assert ok(api.list_user_sessions("token", token))["rows"] == []
    error(api, api.delete_session(sid), 404)


@covers("upsert_session", "get_session", "delete_session", "list_user_sessions")
def test_denied_without_a_valid_token(api, bad_api, anon_api):
    token, _ = new_user(api)
    sid = str(uuid.uuid4())
    ok(api.upsert_session(sid, {"token": token, "secret": 1}))
    for c in (bad_api, anon_api):
        error(c, c.upsert_session(str(uuid.uuid4()), {"a": 1}), 403, "Access denied")
        error(c, c.get_session(sid), 403, "Access denied")
        error(c, c.list_user_sessions("token", token), 403, "Access denied")
        error(c, c.delete_session(sid), 403, "Access denied")
    assert ok(api.get_session(sid))["sessiondata"]["secret"] == 1
