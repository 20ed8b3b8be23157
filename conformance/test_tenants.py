"""Tenants: create, get, update, delete and list them; tenant admin tokens; the public UI conf.

TenantCreate answers `{tenantid, xtoken}`, the xtoken shown once; TenantGet answers `{tenantid,
tenantname, tenantorg, email}` by id (an integer or numeric string); TenantListTenants answers
`{total, rows: [{tenantid, tenantname, tenantorg}]}`. Creating, listing and deleting tenants is
for the main tenant's root only: those tests are `main_tenant_only`, and
test_main_tenant_only_operations_refuse_a_tenant_admin asserts the 403 a tenant admin gets, in
both passes. A tenant admin reads and updates its own tenant only. Client 0.1.7 has no method for
TenantGetUIConf: it is called with plain HTTP here.
"""

import requests

from support import (
    covers,
    create_tenant,
    error,
    main_tenant_only,
    new_email,
    new_tenant_name,
    new_user,
    ok,
    root_token,
    vault_url,
)

NO_TENANT = 999_999_999
MAIN = 1


def all_tenants(api, page=100):
    """Every row of TenantListTenants, walked a page at a time, and the total it answered."""
    rows, offset, total = [], 0, None
    while True:
        answer = ok(api.list_tenants(offset, page))
        assert isinstance(answer["rows"], list), answer
        if total is None:
            total = answer["total"]
        rows.extend(answer["rows"])
        if len(answer["rows"]) < page:
            return rows, total
        offset += page


@main_tenant_only
@covers("create_tenant", "get_tenant", "update_tenant", "list_tenants", "delete_tenant")
def test_tenant_lifecycle(api, client_as):
    email = new_email()
    tenantid, name, xtoken = create_tenant(api, email=email)
    # By id, as an integer or a numeric string (what the Java client sends).
    for handle in (tenantid, str(tenantid)):
        got = ok(api.get_tenant(handle))
        assert got["tenantid"] == tenantid, got
        assert (got["tenantname"], got["tenantorg"], got["email"]) == (name, f"Org of {name}", email), got

    other = new_email()
    ok(api.update_tenant(tenantid, {"tenantorg": "Renamed Org", "email": other}))
    got = ok(api.get_tenant(tenantid))
    assert (got["tenantname"], got["tenantorg"], got["email"]) == (name, "Renamed Org", other), got

    rows, total = all_tenants(api)
    assert total == len(rows) and total >= 2, (total, rows)
    by_id = {row["tenantid"]: row for row in rows}
    assert by_id[tenantid] == {"tenantid": tenantid, "tenantname": name, "tenantorg": "Renamed Org"}, rows
    assert by_id[MAIN]["tenantname"] == "main", rows
    # Oldest first, paged.
    assert [row["tenantid"] for row in rows] == sorted(by_id), rows
    assert ok(api.list_tenants(0, 1))["rows"] == [rows[0]]
    assert ok(api.list_tenants(total - 1, 10))["rows"] == [rows[-1]]
    assert ok(api.list_tenants(total + 5, 10))["rows"] == []

    admin = client_as(xtoken)
    ok(admin.create_user({"email": new_email()}))
    ok(api.delete_tenant(tenantid))
    # Gone at once: its token, its record, its place in the listing; its name is free again.
    error(admin, admin.create_user({"email": new_email()}), 403, "Access denied")
    error(api, api.get_tenant(tenantid), 404, "The tenant record was not found")
    error(api, api.delete_tenant(tenantid), 404, "The tenant record was not found")
    assert tenantid not in {row["tenantid"] for row in all_tenants(api)[0]}
    again, _, _ = create_tenant(api, name=name)
    assert again > tenantid, "tenant ids are never given out twice"
    ok(api.delete_tenant(again))


@main_tenant_only
@covers("create_tenant")
def test_create_tenant_refuses_bad_and_duplicate_names(api):
    tenantid, name, _ = create_tenant(api)
    error(api, api.create_tenant({"tenantname": name, "tenantorg": "Again"}), 409, "Duplicate tenant name")
    error(api, api.create_tenant({"tenantname": "main"}), 409, "Duplicate tenant name")
    for bad in ("Acme", "a", "-acme", "acme-", "my company", "ac_me", "x" * 65):
        error(api, api.create_tenant({"tenantname": bad}), 400, "The tenant name must be")
    error(api, api.create_tenant({"tenantorg": "No name"}), 400, "Missing API request parameters: tenantname")
    ok(api.delete_tenant(tenantid))


@main_tenant_only
@covers("get_tenant", "update_tenant", "delete_tenant")
def test_main_tenant_and_unknown_tenants(api):
    main = ok(api.get_tenant(MAIN))
    assert (main["tenantid"], main["tenantname"]) == (MAIN, "main"), main
    error(api, api.delete_tenant(MAIN), 403, "The main tenant cannot be deleted")
    error(api, api.get_tenant(NO_TENANT), 404, "The tenant record was not found")
    error(api, api.update_tenant(NO_TENANT, {"tenantorg": "Nobody"}), 404, "The tenant record was not found")
    error(api, api.delete_tenant(NO_TENANT), 404, "The tenant record was not found")
    error(api, api.get_tenant("not-a-number"), 400, "The tenantid parameter has an incorrect format")


@covers("get_tenant", "update_tenant")
def test_tenant_admin_reads_and_updates_its_own_tenant(tenant_admin):
    admin = tenant_admin.client
    got = ok(admin.get_tenant(tenant_admin.tenantid))
    assert (got["tenantid"], got["tenantname"]) == (tenant_admin.tenantid, tenant_admin.tenantname), got
    assert ok(admin.get_tenant(str(tenant_admin.tenantid)))["tenantname"] == tenant_admin.tenantname
    email = new_email()
    ok(admin.update_tenant(tenant_admin.tenantid, {"tenantorg": "Updated by its admin", "email": email}))
    got = ok(admin.get_tenant(tenant_admin.tenantid))
    assert (got["tenantorg"], got["email"]) == ("Updated by its admin", email), got
    # Another tenant, existing (the main one) or not, is 403 alike.
    for other in (MAIN, NO_TENANT):
        error(admin, admin.get_tenant(other), 403, "Access denied")
        error(admin, admin.update_tenant(other, {"tenantorg": "Hijacked"}), 403, "Access denied")


@covers("create_tenant", "list_tenants", "delete_tenant", "generate_wrapping_key", "set_license_key")
def test_main_tenant_only_operations_refuse_a_tenant_admin(tenant_admin, root_api, client_as):
    admin = tenant_admin.client
    # The tenant's own admin token, and the main tenant's root acting in the tenant.
    for client in (admin, client_as(root_token(), tenant_admin.tenantname)):
        error(client, client.create_tenant({"tenantname": new_tenant_name()}), 403, "Access denied")
        error(client, client.list_tenants(0, 10), 403, "Access denied")
        error(client, client.delete_tenant(tenant_admin.tenantid), 403, "Access denied")
        error(client, client.delete_tenant(MAIN), 403, "Access denied")
        error(client, client.generate_wrapping_key("00", "00", "00"), 403, "Access denied")
        error(client, client.set_license_key("test-license-key-probe"), 403, "Access denied")
    # The tenant is untouched.
    assert ok(admin.get_tenant(tenant_admin.tenantid))["tenantname"] == tenant_admin.tenantname


@covers("create_tenant", "get_tenant", "update_tenant", "delete_tenant", "list_tenants")
def test_tenant_operations_need_a_token(bad_api, anon_api):
    for client in (bad_api, anon_api):
        error(client, client.create_tenant({"tenantname": new_tenant_name()}), 403, "Access denied")
        error(client, client.get_tenant(MAIN), 403, "Access denied")
        error(client, client.update_tenant(MAIN, {"tenantorg": "x"}), 403, "Access denied")
        error(client, client.delete_tenant(MAIN), 403, "Access denied")
        error(client, client.list_tenants(0, 10), 403, "Access denied")


@covers("create_user", "get_user")
def test_tenant_admin_token_with_and_without_the_tenant_header(tenant_admin, root_api, client_as):
    with_header = client_as(tenant_admin.xtoken, tenant_admin.tenantname)
    without = client_as(tenant_admin.xtoken)
    token, profile = new_user(with_header)
    for client in (with_header, without):
        assert ok(client.get_user("token", token))["profile"] == profile
    # The main tenant does not see it, unless its root acts in the tenant.
    error(root_api, root_api.get_user("email", profile["email"]), 404, "The user record was not found")
    in_tenant = client_as(root_token(), tenant_admin.tenantname)
    assert ok(in_tenant.get_user("token", token))["profile"] == profile
    # The same email in the main tenant is another user.
    main_token = ok(root_api.create_user({"email": profile["email"]}))["token"]
    assert main_token != token
    # Another tenant's name, existing or not, is 403 for the tenant's token.
    for other in ("main", new_tenant_name()):
        elsewhere = client_as(tenant_admin.xtoken, other)
        error(elsewhere, elsewhere.get_user("token", token), 403, "Access denied")
    ok(root_api.delete_user("token", main_token))


@covers("create_tenant", "update_tenant", "get_tenant", "delete_tenant")
def test_rename_with_the_tenants_own_token(root_api, client_as):
    tenantid, old, xtoken = create_tenant(root_api)
    new = new_tenant_name()
    ok(client_as(xtoken, old).update_tenant(tenantid, {"tenantname": new}))
    assert ok(root_api.get_tenant(tenantid))["tenantname"] == new
    # The old name selects nothing; the token works with the new one, or none.
    stale = client_as(xtoken, old)
    error(stale, stale.get_tenant(tenantid), 403, "Access denied")
    for client in (client_as(xtoken, new), client_as(xtoken)):
        assert ok(client.get_tenant(tenantid))["tenantname"] == new
    # A name taken by another tenant is refused.
    other, taken, _ = create_tenant(root_api)
    error(root_api, root_api.update_tenant(tenantid, {"tenantname": taken}), 409, "Duplicate tenant name")
    error(root_api, root_api.update_tenant(tenantid, {"tenantname": "Bad Name"}), 400, "The tenant name must be")
    ok(root_api.delete_tenant(tenantid))
    ok(root_api.delete_tenant(other))


def ui_conf(tenant=None, token=None):
    headers = {"Content-Type": "application/json"}
    if tenant is not None:
        headers["X-Bunker-Tenant"] = tenant
    if token is not None:
        headers["X-Bunker-Token"] = token
    response = requests.post(f"{vault_url()}/v2/TenantGetUIConf", headers=headers, timeout=30)
    assert response.status_code == 200, (response.status_code, response.text)
    return ok(response.json())["ui"]


def test_ui_conf_is_public_and_the_same_shape_for_unknown_tenants(tenant_admin):
    org = ok(tenant_admin.client.get_tenant(tenant_admin.tenantid))["tenantorg"]
    assert ui_conf(tenant_admin.tenantname) == {"tenantname": tenant_admin.tenantname, "tenantorg": org}
    # A token, valid or not, changes nothing.
    assert ui_conf(tenant_admin.tenantname, token=tenant_admin.xtoken)["tenantname"] == tenant_admin.tenantname
    assert ui_conf(tenant_admin.tenantname, token="not-a-token")["tenantname"] == tenant_admin.tenantname
    assert ui_conf()["tenantname"] == "main"
    for unknown in (new_tenant_name(), "Not A Name"):
        assert ui_conf(unknown) == {"tenantname": "", "tenantorg": ""}
