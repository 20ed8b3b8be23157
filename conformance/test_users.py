"""Users: create, get, update, patch, delete, versions, bulk."""

import random
import re

from support import covers, error, new_email, new_user, ok, unique

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@covers("create_user", "get_user")
def test_create_then_get_by_every_mode(api):
    email = new_email()
    login = unique("login")
    custom = unique("custom")
    phone = f"+44 7700 {random.randint(900000, 999999)}"
    profile = {"email": email, "login": login, "custom": custom, "phone": phone, "name": "Ada", "age": 36}
    token = ok(api.create_user(profile))["token"]
    assert UUID.match(token), token
    for mode, identity in [("token", token), ("email", email), ("login", login), ("custom", custom), ("phone", phone)]:
        found = ok(api.get_user(mode, identity))
        assert found["token"] == token
        # The stored profile comes back verbatim, numbers as numbers.
        assert found["profile"] == profile
        assert found["version"] == 1
    # Email lookups are case-insensitive.
    assert ok(api.get_user("email", email.upper()))["token"] == token


@covers("create_user")
def test_create_with_lifetime_options(api):
    token = ok(api.create_user({"email": new_email()}, {"finaltime": "100d", "slidingtime": "30d"}))["token"]
    found = ok(api.get_user("token", token))
    assert found["finaltime"] > 0
    assert found["slidingtime"] == 30 * 86400
    # This client sends an option present as None as JSON null: it means "not given".
    token = ok(api.create_user({"email": new_email()}, {"finaltime": None, "slidingtime": None}))["token"]
    assert ok(api.get_user("token", token))["finaltime"] == 0


@covers("create_user", "get_user")
def test_profile_values_round_trip_verbatim(api):
    profile = {
        "email": new_email(),
        "name": "Zoë Ŧest 日本語 \u2603",
        "phone": random.randint(10**9, 10**10),
        "score": 1.5,
        "active": True,
        "nothing": {"empty": [], "nested": {"deep": [1, "two", None]}},
    }
    token = ok(api.create_user(profile))["token"]
    assert ok(api.get_user("token", token))["profile"] == profile


@covers("create_user")
def test_create_rejects_duplicates_and_bad_input(api):
    _, profile = new_user(api)
    error(api, api.create_user({"email": profile["email"].upper()}), 409, "Duplicate index: email")
    error(api, api.create_user({"login": profile["login"]}), 409, "Duplicate index: login")
    error(api, api.create_user("not an object"), 400)
    error(api, api.create_user({"email": new_email()}, {"groupname": "nosuchgroup"}), 404)


@covers("get_user")
def test_get_unknown_and_malformed(api):
    error(api, api.get_user("email", new_email()), 404, "The user record was not found")
    error(api, api.get_user("token", "11111111-2222-3333-4444-555555555555"), 404, "The user record was not found")
    error(api, api.get_user("token", "not-a-uuid"), 400, "Bad UUID")
    error(api, api.get_user("nickname", "x"), 400, "The mode parameter has an incorrect format")


@covers("create_user", "get_user", "update_user", "patch_user", "delete_user", "list_user_versions")
def test_wrong_or_missing_token_is_denied(api, bad_api, anon_api):
    token, profile = new_user(api)
    for client in (bad_api, anon_api):
        error(client, client.create_user({"email": new_email()}), 403, "Access denied")
        error(client, client.get_user("token", token), 403, "Access denied")
        error(client, client.update_user("token", token, {"name": "Mallory"}), 403, "Access denied")
        error(client, client.patch_user("token", token, [{"op": "add", "path": "/x", "value": 1}]), 403)
        error(client, client.list_user_versions("token", token), 403, "Access denied")
        error(client, client.delete_user("token", token), 403, "Access denied")
    assert ok(api.get_user("token", token))["profile"] == profile


@covers("update_user", "get_user")
def test_update_merges_and_keeps_lookups(api):
    token, profile = new_user(api, phone="+15555550123")
    ok(api.update_user("email", profile["email"], {"name": "Grace", "phone": None, "city": "Leeds"}))
    found = ok(api.get_user("email", profile["email"]))
    assert found["token"] == token
    expected = {k: v for k, v in profile.items() if k != "phone"}
    expected.update({"name": "Grace", "city": "Leeds"})
    assert found["profile"] == expected
    # The removed phone no longer finds anyone; a changed email is re-indexed.
    error(api, api.get_user("phone", "+15555550123"), 404)
    new = new_email()
    ok(api.update_user("token", token, {"email": new}))
    assert ok(api.get_user("email", new))["token"] == token
    error(api, api.get_user("email", profile["email"]), 404)


@covers("update_user")
def test_update_errors(api):
    token, _ = new_user(api)
    _, other = new_user(api)
    error(api, api.update_user("token", token, {"email": other["email"]}), 409, "Duplicate index: email")
    error(api, api.update_user("email", new_email(), {"name": "x"}), 404, "The user record was not found")
    error(api, api.update_user("token", token, ["not", "an", "object"]), 400)


@covers("patch_user", "get_user")
def test_patch_applies_rfc6902(api):
    token, profile = new_user(api, tags=["a"])
    ok(
        api.patch_user(
            "token",
            token,
            [
                {"op": "replace", "path": "/name", "value": "Patched"},
                {"op": "add", "path": "/tags/-", "value": "b"},
                {"op": "remove", "path": "/login"},
            ],
        )
    )
    found = ok(api.get_user("token", token))["profile"]
    assert found["name"] == "Patched"
    assert found["tags"] == ["a", "b"]
    assert "login" not in found
    error(api, api.get_user("login", profile["login"]), 404)
    ok(api.patch_user("token", token, [{"op": "copy", "from": "/name", "path": "/alias"}]))
    ok(api.patch_user("token", token, [{"op": "move", "from": "/alias", "path": "/nickname"}]))
    found = ok(api.get_user("token", token))["profile"]
    assert found["nickname"] == "Patched" and "alias" not in found


@covers("patch_user", "get_user")
def test_patch_errors_leave_the_profile_untouched(api):
    token, profile = new_user(api)
    failing = [{"op": "replace", "path": "/name", "value": "Changed"}, {"op": "test", "path": "/name", "value": "x"}]
    error(api, api.patch_user("token", token, failing), 400)
    assert ok(api.get_user("token", token))["profile"] == profile
    error(api, api.patch_user("token", token, [{"op": "jump", "path": "/name"}]), 400)
    error(api, api.patch_user("email", new_email(), [{"op": "add", "path": "/a", "value": 1}]), 404)


@covers("list_user_versions", "get_user")
def test_versions_record_every_change(api):
    token, profile = new_user(api)
    ok(api.update_user("token", token, {"name": "Second"}))
    ok(api.patch_user("token", token, [{"op": "add", "path": "/city", "value": "York"}]))
    listed = ok(api.list_user_versions("token", token))
    versions = listed["versions"]
    assert [v["version"] for v in sorted(versions, key=lambda v: v["version"])] == [1, 2, 3]
    for v in versions:
        assert isinstance(v["optime"], int) and v["optime"] > 0
        assert re.match(r"^[0-9a-f]{32}$", v["md5"]), v
    assert ok(api.get_user("token", token, 1))["profile"] == profile
    assert ok(api.get_user("token", token, 2))["profile"]["name"] == "Second"
    assert ok(api.get_user("token", token))["version"] == 3
    error(api, api.get_user("token", token, 99), 404)
    error(api, api.list_user_versions("email", new_email()), 404)


@covers("delete_user", "get_user")
def test_delete_by_email_and_token(api):
    token, profile = new_user(api)
    ok(api.delete_user("email", profile["email"]))
    error(api, api.get_user("token", token), 404, "The user record was not found")
    error(api, api.get_user("email", profile["email"]), 404)
    error(api, api.delete_user("token", token), 404)
    # The freed email can be used again.
    token2, _ = new_user(api)
    ok(api.delete_user("token", token2))
    assert ok(api.create_user({"email": profile["email"]}))["token"] != token


@covers("create_users_bulk", "get_user")
def test_bulk_create_partial_success(api):
    _, existing = new_user(api)
    a, b = new_email(), new_email()
    records = [
        {"profile": {"email": a, "name": "A"}},
        {"profile": {"email": existing["email"]}},
        {"profile": {"email": b, "name": "B"}},
        {"profile": {"email": b}},
    ]
    result = ok(api.create_users_bulk(records, {"finaltime": "1y", "slidingtime": "30d"}))
    created = result["created"]
    assert [c["profile"]["email"] for c in created] == [a, b]
    assert all(UUID.match(c["token"]) for c in created)
    assert [e["reason"] for e in result["errors"]] == ["Duplicate email value", "Duplicate email value"]
    assert ok(api.get_user("email", a))["token"] == created[0]["token"]
    assert ok(api.get_user("email", b))["profile"] == {"email": b, "name": "B"}
    error(api, api.create_users_bulk([]), 400)


@covers("create_users_bulk", "delete_users_bulk")
def test_bulk_of_a_few_hundred(api):
    emails = [new_email() for _ in range(300)]
    created = ok(api.create_users_bulk([{"profile": {"email": e, "n": i}} for i, e in enumerate(emails)]))["created"]
    assert [c["profile"]["email"] for c in created] == emails
    assert ok(api.get_user("email", emails[150]))["profile"] == {"email": emails[150], "n": 150}
    result = ok(api.delete_users_bulk([{"mode": "token", "identity": c["token"]} for c in created]))
    assert result["deleted"] == 300
    error(api, api.get_user("email", emails[299]), 404)


@covers("delete_users_bulk", "get_user")
def test_bulk_delete(api):
    t1, p1 = new_user(api)
    t2, _ = new_user(api)
    users = [
        {"mode": "email", "identity": p1["email"]},
        {"mode": "token", "identity": t2},
        {"mode": "token", "identity": t2},
        {"mode": "email", "identity": new_email()},
    ]
    result = ok(api.delete_users_bulk(users))
    assert result["total"] == 4
    assert result["deleted"] == 2
    error(api, api.get_user("token", t1), 404)
    error(api, api.get_user("token", t2), 404)
    error(api, api.delete_users_bulk([]), 400)
    error(api, api.delete_users_bulk([{"mode": "nickname", "identity": "x"}]), 400)
