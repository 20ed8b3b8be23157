"""System operations and the client's transport: wrapping-key rotation, metrics, raw requests."""

import json
import os
import re
import uuid

import pytest

from support import covers, error, main_tenant_only, new_email, new_user, ok, root_token, unique


def shares():
    """Recovery shares printed at first start ($CONFORMANCE_SHARES); demo mode has none."""
    value = os.environ.get("CONFORMANCE_SHARES", "")
    return [s for s in value.split(",") if s]


@main_tenant_only
@covers("generate_wrapping_key")
def test_generate_wrapping_key_refuses_bad_shares(api, bad_api, anon_api):
    error(api, api.generate_wrapping_key("zz-not-hex", "00", "00"), 400)
    # Well-formed shares of some other secret: they do not recover this vault's master key.
    other = ["01" + "11" * 33, "02" + "22" * 33, "03" + "33" * 33]
    result = api.generate_wrapping_key(*other)
    assert result["status"] == "error", result
    assert api.status in (400, 403), (api.status, result)
    for c in (bad_api, anon_api):
        error(c, c.generate_wrapping_key(*other), 403, "Access denied")


@main_tenant_only
@covers("generate_wrapping_key")
def test_generate_wrapping_key_from_the_shares(api):
    keys = shares()
    if len(keys) < 3:
        pytest.skip("no recovery shares: the vault was started in demo mode")
    wrapped = ok(api.generate_wrapping_key(keys[0], keys[2], keys[4]))["wrappingkey"]
    assert re.match(r"^[0-9a-f]{48}$", wrapped), wrapped
    # Any three shares work, and the vault keeps serving with the re-wrapped keys.
    again = ok(api.generate_wrapping_key(keys[1], keys[2], keys[3]))["wrappingkey"]
    assert again != wrapped
    token, profile = new_user(api)
    assert ok(api.get_user("token", token))["profile"] == profile


@main_tenant_only
@covers("set_license_key")
def test_set_license_key_refuses_what_does_not_verify(api, bad_api, anon_api):
    # The vendor's own tests send such a key and accept any answer: a vault that installed it
    # could limit or expire itself under the other tests. It is refused and nothing changes.
    garbage = f"test-license-key-{uuid.uuid4().hex}"
    error(api, api.set_license_key(garbage), 400, "License key is invalid")
    for c in (bad_api, anon_api):
        error(c, c.set_license_key(garbage), 403, "Access denied")
    token, profile = new_user(api)
    assert ok(api.get_user("token", token))["profile"] == profile


@covers("get_system_metrics", "parse_prometheus_metrics")
def test_metrics(api, anon_api):
    token, _ = new_user(api)
    ok(api.get_user("token", token))
    # Served without authentication; the client sends no token for it.
    metrics = anon_api.get_system_metrics()
    assert "status" not in metrics, metrics
    assert metrics, "no metric parsed"
    assert all(isinstance(v, float) for v in metrics.values())
    names = {key.split("{")[0] for key in metrics}
    assert any("request" in name for name in names), sorted(names)


@covers("raw_request")
def test_raw_request_returns_the_json_bytes(api, bad_api):
    token, profile = new_user(api)
    raw = api.raw_request("UserGet", {"mode": "token", "identity": token})
    assert isinstance(raw, bytes)
    body = json.loads(raw)
    assert body["status"] == "ok" and body["profile"] == profile
    denied = json.loads(bad_api.raw_request("UserGet", {"mode": "token", "identity": token}))
    assert denied == {"status": "error", "message": "Access denied"}
    unknown = json.loads(api.raw_request("NoSuchOperation"))
    assert unknown == {"status": "error", "message": "The API request was not found"}


@covers("get_user")
def test_request_metadata_is_accepted(api):
    token, _ = new_user(api)
    ok(api.get_user("token", token, request_metadata={"reason": "support ticket 42"}))
    rows = ok(api.list_user_audit_events("token", token, 0, 10))["rows"]
    read = next(row for row in rows if row["title"] == "UserGet")
    details = ok(api.get_audit_event(read["auditeventuuid"]))["details"]
    assert "support ticket 42" in json.dumps(details), details


@main_tenant_only
@covers("get_user_profiles", "search_user_profiles", "delete_user_profiles", "restore_user_profile")
def test_profiles_across_tenants(api, tenant_admin, client_as):
    """The same e-mail in the main tenant and in a tenant: found in both, deleted in both (held),
    restored in one."""
    email = new_email()
    in_tenant = client_as(root_token(), tenant_admin.tenantname)
    main_token = ok(api.create_user({"email": email, "login": unique("main")}))["token"]
    tenant_token = ok(in_tenant.create_user({"email": email, "login": unique("tenant")}))["token"]
    unlock = ok(api.bulk_list_unlock())["unlockuuid"]

    found = ok(api.get_user_profiles("email", email.upper(), unlock))
    assert found["total"] == 2, found
    by_tenant = {row["tenantid"]: row for row in found["rows"]}
    assert by_tenant[1]["token"] == main_token and by_tenant[1]["tenantname"] == "main", found
    row = by_tenant[tenant_admin.tenantid]
    assert row["token"] == tenant_token and row["tenantname"] == tenant_admin.tenantname, found
    assert row["profile"]["email"] == email, found

    search = ok(api.search_user_profiles(email[:-4], unlock))
    assert {row["token"] for row in search["rows"]} >= {main_token, tenant_token}, search

    deleted = ok(api.delete_user_profiles("email", email, unlock))
    assert {(r["token"], r["tenantid"]) for r in deleted["rows"]} == {
        (main_token, 1),
        (tenant_token, tenant_admin.tenantid),
    }, deleted
    error(api, api.get_user("token", main_token), 404, "The user record was not found")
    error(in_tenant, in_tenant.get_user("token", tenant_token), 404, "The user record was not found")

    # By id or by name, as the client sends either.
    restored = ok(api.restore_user_profile(tenant_token, unlock, tenant_admin.tenantname))
    assert restored["result"] == "restored" and restored["token"] == tenant_token, restored
    assert restored["profile"]["email"] == email, restored
    assert ok(in_tenant.get_user("token", tenant_token))["profile"]["email"] == email
    ok(api.restore_user_profile(main_token, unlock, 1))
    assert ok(api.get_user("token", main_token))["profile"]["email"] == email
    error(api, api.restore_user_profile(main_token, unlock, 1), 404, "The user record was not found")


@covers("get_user_profiles", "search_user_profiles", "delete_user_profiles", "restore_user_profile")
def test_profile_operations_refuse_a_tenant_admin(tenant_admin, client_as, bad_api):
    admin = tenant_admin.client
    unlock = ok(admin.bulk_list_unlock())["unlockuuid"]
    for client in (admin, client_as(root_token(), tenant_admin.tenantname), bad_api):
        error(client, client.get_user_profiles("email", new_email(), unlock), 403, "Access denied")
        error(client, client.search_user_profiles("someone", unlock), 403, "Access denied")
        error(client, client.delete_user_profiles("email", new_email(), unlock), 403, "Access denied")
        error(client, client.restore_user_profile(str(uuid.uuid4()), unlock, 1), 403, "Access denied")
@covers("get_system_stats", "create_user", "delete_user")
def test_system_stats_count_records(api, bad_api, anon_api, pass_tenant):
    def stats():
        answer = ok(api.get_system_stats())
        counts = answer["stats"]
        for field in ("totalnumrecords", "licensemaxrecords", "licensefinalexpiration"):
            assert answer[field] == counts[field], answer
        assert counts["totalnumrecords"] == counts["numusers"] + counts["numtokens"], answer
        return counts

    before = stats()
    # The tenant pass sees its own tenant; the root pass the whole vault.
    if pass_tenant is not None:
        assert before["numtenants"] == 1, before
    else:
        assert before["numtenants"] >= 1, before
    token, _ = new_user(api)
    after = stats()
    assert after["numusers"] == before["numusers"] + 1, (before, after)
    ok(api.delete_user("token", token))
    assert stats()["numusers"] == before["numusers"]
    for c in (bad_api, anon_api):
        error(c, c.get_system_stats(), 403, "Access denied")
