"""App data: one JSON object per user and app name, merged on update, versioned."""

import re

from support import covers, error, new_email, new_user, ok, unique


def app_name():
    return unique("app_")


@covers("create_app_data", "get_app_data")
def test_create_and_get(api):
    token, profile = new_user(api)
    app = app_name()
    data = {"size": "M", "count": 3, "nested": {"ok": True}}
    ok(api.create_app_data("email", profile["email"], app, data))
    got = ok(api.get_app_data("token", token, app))
    assert got["appdata"] == data
    # App names are case-insensitive.
    assert ok(api.get_app_data("login", profile["login"], app.upper()))["appdata"] == data


@covers("create_app_data")
def test_create_errors(api):
    token, _ = new_user(api)
    app = app_name()
    ok(api.create_app_data("token", token, app, {"a": 1}))
    error(api, api.create_app_data("token", token, app, {"a": 2}), 409, "Duplicate app record")
    error(api, api.create_app_data("email", new_email(), app, {"a": 1}), 404, "The user record was not found")
    error(api, api.create_app_data("token", token, "bad name!", {"a": 1}), 400, "appname")
    error(api, api.create_app_data("token", token, app_name(), ["no"]), 400, "appdata")


@covers("get_app_data")
def test_get_errors(api):
    token, _ = new_user(api)
    error(api, api.get_app_data("token", token, app_name()), 404, "The app record was not found")
    error(api, api.get_app_data("email", new_email(), app_name()), 404, "The user record was not found")


@covers("update_app_data", "get_app_data")
def test_update_merges(api):
    token, _ = new_user(api)
    app = app_name()
    ok(api.create_app_data("token", token, app, {"size": "M", "color": "blue"}))
    ok(api.update_app_data("token", token, app, {"color": "red", "size": None, "fit": "slim"}))
    assert ok(api.get_app_data("token", token, app))["appdata"] == {"color": "red", "fit": "slim"}
    error(api, api.update_app_data("token", token, app_name(), {"a": 1}), 404, "The app record was not found")
    error(api, api.update_app_data("token", token, app, "text"), 400)


@covers("list_app_data_versions")
def test_versions(api):
    token, _ = new_user(api)
    app = app_name()
    ok(api.create_app_data("token", token, app, {"v": 1}))
    for v in (2, 3, 4):
        ok(api.update_app_data("token", token, app, {"v": v}))
    versions = ok(api.list_app_data_versions("token", token, app))["versions"]
    assert sorted(v["version"] for v in versions) == [1, 2, 3, 4]
    for v in versions:
        assert isinstance(v["optime"], int)
        assert re.match(r"^[0-9a-f]{32}$", v["md5"])
    assert len({v["md5"] for v in versions}) == 4
    error(api, api.list_app_data_versions("token", token, app_name()), 404)


@covers("list_app_data_names", "list_app_names")
def test_app_name_lists(api):
    token, _ = new_user(api)
    first, second = app_name(), app_name()
    ok(api.create_app_data("token", token, first, {"a": 1}))
    ok(api.create_app_data("token", token, second, {"b": 2}))
    assert sorted(ok(api.list_app_data_names("token", token))["apps"]) == sorted([first, second])
    other, _ = new_user(api)
    assert ok(api.list_app_data_names("token", other))["apps"] == []
    everywhere = ok(api.list_app_names())["apps"]
    assert {first, second} <= set(everywhere)
    error(api, api.list_app_data_names("email", new_email()), 404)


@covers("delete_app_data", "get_app_data", "list_app_data_names")
def test_delete(api):
    token, _ = new_user(api)
    app = app_name()
    ok(api.create_app_data("token", token, app, {"a": 1}))
    ok(api.delete_app_data("token", token, app))
    error(api, api.get_app_data("token", token, app), 404, "The app record was not found")
    assert ok(api.list_app_data_names("token", token))["apps"] == []
    error(api, api.delete_app_data("token", token, app), 404)
    # The name is free again.
    ok(api.create_app_data("token", token, app, {"a": 2}))


@covers(
    "create_app_data",
    "get_app_data",
    "update_app_data",
    "delete_app_data",
    "list_app_data_names",
    "list_app_names",
    "list_app_data_versions",
)
def test_denied_without_a_valid_token(api, bad_api, anon_api):
    token, _ = new_user(api)
    app = app_name()
    ok(api.create_app_data("token", token, app, {"secret": 1}))
    for client in (bad_api, anon_api):
        error(client, client.create_app_data("token", token, app_name(), {"a": 1}), 403, "Access denied")
        error(client, client.get_app_data("token", token, app), 403, "Access denied")
        error(client, client.update_app_data("token", token, app, {"a": 1}), 403, "Access denied")
        error(client, client.list_app_data_names("token", token), 403, "Access denied")
        error(client, client.list_app_names(), 403, "Access denied")
        error(client, client.list_app_data_versions("token", token, app), 403, "Access denied")
        error(client, client.delete_app_data("token", token, app), 403, "Access denied")
    assert ok(api.get_app_data("token", token, app))["appdata"] == {"secret": 1}
