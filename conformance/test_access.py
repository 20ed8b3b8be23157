"""Access control: groups, roles, policies, memberships and access tokens (xtokens).

Contract §2.2 "Groups, roles, policies", "Access tokens", §1.7 and §3.9: GroupCreate, RoleCreate
and PolicyCreate answer the new record's id; GroupGet and PolicyGet read back what was written,
by id or by name; names are unique per tenant (409); a user holds at most one role per group
(GroupAddUser again changes it). A role xtoken acts as its role and a user xtoken as its user:
both are judged by the policies linked to the role (the user's: to the roles it holds in its
groups), fields a policy does not show come back as "***" when strings and are left out
otherwise, and a call no policy allows is 403 "API access denied". Creating roles, policies,
links and role tokens is for administrators (root or the tenant's admin) only.

Client 0.1.7 has no method for RoleDelete, PolicyDelete, PolicySimulate and
PolicyListEffectivePermissions, nor for GroupDelete's `cascade` and RoleLinkPolicy's `unlink`:
they are called through the client's raw_request (its token and tenant header, the answer parsed
here). The administrators' operations refused to an access token answer 403 "Access denied" (a
policy's denial is "API access denied"): either message is accepted for them.
"""

import json
import time

import pytest

from support import covers, error, is_uuid, new_email, new_user, ok, unique

DENIED = "API access denied"
NO_TOKEN = "Access denied"
GROUP_NOT_FOUND = "The group record was not found"
ROLE_NOT_FOUND = "The role record was not found"
POLICY_NOT_FOUND = "The policy record was not found"
MASK = "***"
# XTokenCreateForRole and XTokenCreateForUser without a lifetime: ten minutes.
DEFAULT_XTOKEN_SECS = 600
# How long a change (a deleted user's tokens) takes to reach every replica's caches: the feed is
# read every 250 ms.
FEED_BOUND_SECS = 2


def refused(client, result):
    """An administrator's operation refused to an access token: 403, whichever message (the
    vault answers "Access denied", as for a tenant admin calling a main-tenant-only operation;
    a policy denial would be "API access denied")."""
    error(client, result, 403)
    assert result["message"] in (NO_TOKEN, DENIED), result


def call(client, operation, body=None):
    """An operation client 0.1.7 has no method for, through its raw_request: the JSON answer
    (its HTTP status in client.status)."""
    return json.loads(client.raw_request(operation, body))


@pytest.fixture
def as_token(client_as, pass_tenant):
    """The official client with an access token as its token (and the pass's tenant header)."""
    tenant = pass_tenant.tenantname if pass_tenant else ""
    return lambda token: client_as(token, tenant)


def new_group(api, **extra):
    """Creates a group with a fresh name; returns (groupid, groupname)."""
    name = unique("group-")
    created = ok(api.create_group({"groupname": name, **extra}))
    assert isinstance(created["groupid"], int) and created["groupid"] > 0, created
    return created["groupid"], name


def new_role(api):
    """Creates a role with a fresh name; returns (roleid, rolename)."""
    name = unique("role-")
    created = ok(api.create_role({"rolename": name, "roledesc": f"Role {name}"}))
    assert isinstance(created["roleid"], int) and created["roleid"] > 0, created
    return created["roleid"], name


def allow(actions, resources):
    """A one-statement Allow policy document."""
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def new_policy(api, document):
    """Creates a policy with a fresh name; returns (policyid, policyname)."""
    name = unique("policy-")
    created = ok(api.create_policy({"policyname": name, "policydesc": f"Policy {name}", "policy": document}))
    assert isinstance(created["policyid"], int) and created["policyid"] > 0, created
    return created["policyid"], name


def role_with(api, document):
    """A fresh role linked to a fresh policy holding `document`; returns (roleid, rolename, policyid)."""
    roleid, rolename = new_role(api)
    policyid, _ = new_policy(api, document)
    ok(api.link_policy(roleid, policyid))
    return roleid, rolename, policyid


def assert_expiration(answer, seconds):
    """An xtoken's expiration: unix seconds, about `seconds` from now."""
    now = time.time()
    assert isinstance(answer["expiration"], int), answer
    assert now + seconds - 60 <= answer["expiration"] <= now + seconds + 60, (now, answer)


def role_token(api, role_ref, options=None):
    """A role xtoken made with the client; asserts its answer."""
    made = ok(api.create_role_x_token(role_ref, options))
    assert is_uuid(made["xtoken"]), made
    return made


def user_groups(api, mode, identity):
    """GroupListUserGroups' rows by groupid."""
    answer = ok(api.list_user_groups(mode, identity))
    assert answer["total"] == len(answer["rows"]), answer
    return {row["groupid"]: row for row in answer["rows"]}


# A profile with strings, a number and an object: masking keeps the strings' keys as "***" and
# leaves the others out.
def rich_profile():
    return {
        "email": new_email(),
        "login": unique("login"),
        "name": "Grace",
        "age": 41,
        "address": {"city": "Leeds", "zip": "LS1"},
    }


@covers("create_group", "get_group", "list_all_groups", "update_group", "delete_group")
def test_group_lifecycle(api):
    groupid, name = new_group(api, groupdesc="Support desk", grouptype="team")
    for ref in (groupid, name):
        got = ok(api.get_group(ref))
        assert (got["groupid"], got["groupname"], got["groupdesc"], got["grouptype"]) == (
            groupid,
            name,
            "Support desk",
            "team",
        ), got
        assert got["parentgroupid"] is None and got["attributes"] == {}, got
        assert isinstance(got["creationtime"], int) and got["creationtime"] > 0, got
    # Without a type a group is of type "users".
    plain, _ = new_group(api)
    assert ok(api.get_group(plain))["grouptype"] == "users"

    listed = ok(api.list_all_groups())
    assert listed["total"] == len(listed["rows"]), listed
    by_id = {row["groupid"]: row for row in listed["rows"]}
    assert by_id[groupid]["groupname"] == name and by_id[groupid]["groupdesc"] == "Support desk", listed
    assert plain in by_id

    renamed = unique("group-")
    ok(api.update_group(groupid, {"groupname": renamed, "groupdesc": "Second line", "attributes": {"tier": 2}}))
    got = ok(api.get_group(groupid))
    assert (got["groupname"], got["groupdesc"], got["grouptype"]) == (renamed, "Second line", "team"), got
    assert got["attributes"] == {"tier": 2}, got
    assert ok(api.get_group(renamed))["groupid"] == groupid
    error(api, api.get_group(name), 404, GROUP_NOT_FOUND)

    # Below a parent (GroupUpdate takes parentgroupid; the client's create_group does not send it).
    ok(api.update_group(plain, {"parentgroupid": groupid}))
    assert ok(api.get_group(plain))["parentgroupid"] == groupid
    ok(api.delete_group(plain))
    error(api, api.get_group(plain), 404, GROUP_NOT_FOUND)

    # By name, as the client sends a name.
    ok(api.delete_group(renamed))
    for ref in (groupid, renamed):
        error(api, api.get_group(ref), 404, GROUP_NOT_FOUND)
        error(api, api.delete_group(ref), 404, GROUP_NOT_FOUND)
    assert groupid not in {row["groupid"] for row in ok(api.list_all_groups())["rows"]}
    error(api, api.update_group(groupid, {"groupdesc": "Gone"}), 404, GROUP_NOT_FOUND)


@covers("create_group", "update_group")
def test_group_names_are_unique_and_required(api):
    groupid, name = new_group(api)
    error(api, api.create_group({"groupname": name}), 409, "The group record already exists")
    error(api, api.create_group({"groupdesc": "No name"}), 400, "Missing API request parameters: groupname")
    other, other_name = new_group(api)
    error(api, api.update_group(other, {"groupname": name}), 409, "The group record already exists")
    assert ok(api.get_group(other))["groupname"] == other_name
    for ref in (groupid, other):
        ok(api.delete_group(ref))


@covers("create_group", "add_user_to_group", "list_user_groups", "remove_user_from_group", "create_role")
def test_membership_with_and_without_a_role(api):
    token, profile = new_user(api)
    groupid, groupname = new_group(api)
    roleid, rolename = new_role(api)
    other_roleid, other_rolename = new_role(api)

    # Without a role.
    ok(api.add_user_to_group("token", token, groupid))
    row = user_groups(api, "token", token)[groupid]
    assert (row["groupname"], row["roleid"], row["rolename"]) == (groupname, None, None), row
    # With a role by name, then by id: one role per group, the second call changes it.
    ok(api.add_user_to_group("email", profile["email"], groupname, rolename))
    rows = user_groups(api, "email", profile["email"])
    assert list(rows) == [groupid], rows
    assert (rows[groupid]["roleid"], rows[groupid]["rolename"]) == (roleid, rolename), rows
    ok(api.add_user_to_group("login", profile["login"], groupid, other_roleid))
    row = user_groups(api, "token", token)[groupid]
    assert (row["roleid"], row["rolename"]) == (other_roleid, other_rolename), row

    # A second group.
    second, _ = new_group(api)
    ok(api.add_user_to_group("token", token, second, roleid))
    assert set(user_groups(api, "token", token)) == {groupid, second}

    ok(api.remove_user_from_group("token", token, groupid))
    assert set(user_groups(api, "token", token)) == {second}
    error(api, api.remove_user_from_group("token", token, groupid), 404, "The user is not a member of the group")
    ok(api.remove_user_from_group("email", profile["email"], second))
    assert user_groups(api, "token", token) == {}

    # Unknown group, role or user.
    error(api, api.add_user_to_group("token", token, unique("group-")), 404, GROUP_NOT_FOUND)
    error(api, api.add_user_to_group("token", token, groupid, unique("role-")), 404, ROLE_NOT_FOUND)
    error(api, api.add_user_to_group("email", new_email(), groupid), 404, "The user record was not found")
    error(api, api.list_user_groups("email", new_email()), 404, "The user record was not found")
    error(api, api.remove_user_from_group("token", token, unique("group-")), 404, GROUP_NOT_FOUND)
    assert user_groups(api, "token", token) == {}
    for ref in (groupid, second):
        ok(api.delete_group(ref))


@covers("create_group", "add_user_to_group", "update_group", "delete_group", "get_group", "list_user_groups")
def test_delete_group_refuses_members_and_children_unless_cascade(api):
    token, _ = new_user(api)
    parent, parent_name = new_group(api)
    child, _ = new_group(api)
    ok(api.update_group(child, {"parentgroupid": parent}))
    ok(api.add_user_to_group("token", token, parent))
    error(api, api.delete_group(parent), 409, "cascade")
    error(api, api.delete_group(parent_name), 409, "cascade")
    assert ok(api.get_group(parent))["groupname"] == parent_name
    # GroupDelete's cascade (the client cannot send it).
    removed = ok(call(api, "GroupDelete", {"groupid": parent, "cascade": True}))
    assert (removed["groups"], removed["members"]) == (1, 1), removed
    for ref in (parent, child):
        error(api, api.get_group(ref), 404, GROUP_NOT_FOUND)
    assert user_groups(api, "token", token) == {}


@covers("create_role", "update_role", "add_user_to_group", "list_user_groups", "link_policy", "create_role_x_token")
def test_role_lifecycle(api):
    roleid, rolename = new_role(api)
    error(api, api.create_role({"rolename": rolename}), 409, "The role record already exists")
    error(api, api.create_role({"roledesc": "No name"}), 400, "Missing API request parameters: rolename")
    # Unused: no policies, members or tokens.
    updated = ok(api.update_role(roleid, {"roledesc": "Reads names"}))
    assert updated["usage"] == {"policies": 0, "members": 0, "tokens": 0}, updated

    token, _ = new_user(api)
    groupid, _ = new_group(api)
    ok(api.add_user_to_group("token", token, groupid, roleid))
    policyid, _ = new_policy(api, allow(["UserGet"], ["users.profile.name"]))
    ok(api.link_policy(rolename, policyid))
    role_token(api, roleid)
    # By name: the client sends only rolename, which names the role to change.
    updated = ok(api.update_role(rolename, {"roledesc": "Reads names only"}))
    assert updated["usage"] == {"policies": 1, "members": 1, "tokens": 1}, updated

    # Renamed by id: the membership shows the new name.
    renamed = unique("role-")
    ok(api.update_role(roleid, {"rolename": renamed}))
    row = user_groups(api, "token", token)[groupid]
    assert (row["roleid"], row["rolename"]) == (roleid, renamed), row
    error(api, api.update_role(rolename, {"roledesc": "Old name"}), 404, ROLE_NOT_FOUND)
    taken, taken_name = new_role(api)
    error(api, api.update_role(roleid, {"rolename": taken_name}), 409, "The role record already exists")

    # RoleDelete (the client has no method): members keep their group without the role.
    deleted = ok(call(api, "RoleDelete", {"roleid": roleid}))
    assert deleted["usage"] == {"policies": 1, "members": 1, "tokens": 1}, deleted
    row = user_groups(api, "token", token)[groupid]
    assert (row["roleid"], row["rolename"]) == (None, None), row
    error(api, call(api, "RoleDelete", {"roleid": roleid}), 404, ROLE_NOT_FOUND)
    error(api, api.update_role(roleid, {"roledesc": "Gone"}), 404, ROLE_NOT_FOUND)
    error(api, api.create_role_x_token(roleid), 404, ROLE_NOT_FOUND)
    error(api, api.add_user_to_group("token", token, groupid, roleid), 404, ROLE_NOT_FOUND)
    ok(call(api, "RoleDelete", {"rolename": taken_name}))
    error(api, api.update_role(taken, {"roledesc": "Gone"}), 404, ROLE_NOT_FOUND)
    ok(call(api, "PolicyDelete", {"policyid": policyid}))
    ok(call(api, "GroupDelete", {"groupid": groupid, "cascade": True}))


@covers("create_policy", "get_policy", "list_policies", "update_policy", "link_policy", "create_role")
def test_policy_lifecycle(api):
    document = allow(["UserGet", "Bulk*"], ["users.profile.name", "users.profile.email"])
    policyid, name = new_policy(api, document)
    for ref in (policyid, name):
        got = ok(api.get_policy(ref))
        assert (got["policyid"], got["policyname"], got["policydesc"]) == (policyid, name, f"Policy {name}"), got
        assert got["policy"] == document, got
        assert isinstance(got["creationtime"], int) and got["creationtime"] > 0, got
    listed = ok(api.list_policies())
    assert listed["total"] == len(listed["rows"]), listed
    by_id = {row["policyid"]: row for row in listed["rows"]}
    assert by_id[policyid]["policyname"] == name and by_id[policyid]["policy"] == document, listed

    # By id: a new text and description.
    wider = allow(["UserGet"], ["users.profile.*"])
    assert ok(api.update_policy(policyid, {"policydesc": "Reads profiles", "policy": wider})) == {
        "status": "ok",
        "roles": 0,
    }
    got = ok(api.get_policy(policyid))
    assert (got["policydesc"], got["policy"]) == ("Reads profiles", wider), got
    # By name (the client sends only policyname), once linked to two roles.
    for _ in range(2):
        roleid, _ = new_role(api)
        ok(api.link_policy(roleid, name))
    assert ok(api.update_policy(name, {"policydesc": "Linked"}))["roles"] == 2
    assert ok(api.get_policy(name))["policydesc"] == "Linked"
    # Renamed by id.
    renamed = unique("policy-")
    ok(api.update_policy(policyid, {"policyname": renamed}))
    assert ok(api.get_policy(renamed))["policyid"] == policyid
    error(api, api.get_policy(name), 404, POLICY_NOT_FOUND)

    # PolicyDelete (the client has no method): refused while linked, unless forced.
    error(api, call(api, "PolicyDelete", {"policyid": policyid}), 409, "The policy is linked to roles")
    assert ok(api.get_policy(policyid))["policyname"] == renamed
    assert ok(call(api, "PolicyDelete", {"policyname": renamed, "force": True}))["roles"] == 2
    error(api, api.get_policy(policyid), 404, POLICY_NOT_FOUND)
    error(api, call(api, "PolicyDelete", {"policyid": policyid}), 404, POLICY_NOT_FOUND)
    error(api, api.update_policy(policyid, {"policydesc": "Gone"}), 404, POLICY_NOT_FOUND)
    assert policyid not in {row["policyid"] for row in ok(api.list_policies())["rows"]}


@covers("create_policy", "update_policy", "get_policy")
def test_bad_policies_are_refused_naming_the_problem(api):
    policyid, name = new_policy(api, allow(["UserGet"], ["users.profile.name"]))
    error(api, api.create_policy({"policyname": name, "policy": allow(["UserGet"], ["*"])}), 409, "already exists")
    error(api, api.create_policy({"policyname": unique("policy-")}), 400, "Missing API request parameters: policy")
    bad = [
        (allow(["UserGett"], ["*"]), "Unknown action in policy: UserGett"),
        (allow(["UserGet"], ["customers.profile"]), "Unknown resource in policy: customers.profile"),
        ({"Effect": "Permit", "Action": ["UserGet"], "Resource": ["*"]}, "The policy Effect must be Allow or Deny"),
        ({"Effect": "Allow", "Resource": ["*"]}, "The policy needs at least one Action"),
        ({**allow(["UserGet"], ["*"]), "NotAction": ["UserDelete"]}, "Unknown key in policy: NotAction"),
        ([], "The policy needs at least one statement"),
    ]
    for document, message in bad:
        error(api, api.create_policy({"policyname": unique("policy-"), "policy": document}), 400, message)
        error(api, api.update_policy(policyid, {"policy": document}), 400, message)
    # A refused update leaves the policy as it was.
    assert ok(api.get_policy(policyid))["policy"] == allow(["UserGet"], ["users.profile.name"])
    ok(call(api, "PolicyDelete", {"policyid": policyid}))


@covers("create_role", "create_policy", "link_policy", "create_role_x_token", "get_user", "update_policy")
def test_role_xtoken_sees_what_its_policies_show(api, as_token):
    token, profile = new_user(api, **rich_profile())
    shown = ["users.profile.name", "users.profile.address.city"]
    roleid, rolename, policyid = role_with(api, allow(["UserGet"], shown))
    made = role_token(api, roleid)
    assert made["roleid"] == roleid, made
    assert_expiration(made, DEFAULT_XTOKEN_SECS)
    reader = as_token(made["xtoken"])

    got = ok(reader.get_user("token", token))
    assert got["token"] == token, got
    # Strings it may not see are "***" (key kept), the number is left out, and inside the object
    # the field it may see is shown.
    assert got["profile"] == {
        "email": MASK,
        "login": MASK,
        "name": profile["name"],
        "address": {"city": "Leeds", "zip": MASK},
    }, got
    # By a masked field's value: the record is found, and still masked.
    assert ok(reader.get_user("email", profile["email"]))["profile"]["email"] == MASK
    # The stored record is untouched.
    assert ok(api.get_user("token", token))["profile"] == profile

    # What no policy allows is refused, as are the administrators' operations.
    error(reader, reader.delete_user("token", token), 403, DENIED)
    error(reader, reader.update_user("token", token, {"name": "Mallory"}), 403, DENIED)
    error(reader, reader.create_user({"email": new_email()}), 403, DENIED)
    refused(reader, reader.create_role({"rolename": unique("role-")}))
    refused(reader, reader.create_policy({"policyname": unique("policy-"), "policy": allow(["*"], ["*"])}))
    refused(reader, reader.link_policy(rolename, policyid))
    refused(reader, reader.update_role(roleid, {"roledesc": "Mine now"}))
    refused(reader, reader.update_policy(policyid, {"policy": allow(["*"], ["*"])}))
    refused(reader, reader.create_role_x_token(roleid))
    assert ok(api.get_policy(policyid))["policy"]["Resource"] == shown
    assert ok(api.get_user("token", token))["profile"] == profile

    # A wider policy applies from the next call on.
    ok(api.update_policy(policyid, {"policy": allow(["UserGet"], ["users.profile.*"])}))
    assert ok(reader.get_user("token", token))["profile"] == profile
    # A Deny wins over every Allow.
    denial, _ = new_policy(api, {"Effect": "Deny", "Action": ["UserGet"], "Resource": ["*"]})
    ok(api.link_policy(roleid, denial))
    error(reader, reader.get_user("token", token), 403, DENIED)


@covers("create_role", "create_policy", "link_policy", "create_role_x_token", "get_user")
def test_role_xtoken_lifetime_by_name_and_death_with_its_role(api, as_token):
    token, _ = new_user(api)
    roleid, rolename, policyid = role_with(api, allow(["UserGet"], ["users"]))
    # By name, with a lifetime.
    made = role_token(api, rolename, {"finaltime": "1h"})
    assert made["roleid"] == roleid, made
    assert_expiration(made, 3600)
    reader = as_token(made["xtoken"])
    assert ok(reader.get_user("token", token))["token"] == token
    # Each call makes a new token.
    assert role_token(api, roleid)["xtoken"] != made["xtoken"]
    # Unlinked: nothing is allowed any more.
    ok(call(api, "RoleLinkPolicy", {"roleid": roleid, "policyid": policyid, "unlink": True}))
    error(reader, reader.get_user("token", token), 403, DENIED)
    ok(api.link_policy(roleid, policyid))
    assert ok(reader.get_user("token", token))["token"] == token
    # Its role deleted: the token is no token at all.
    ok(call(api, "RoleDelete", {"roleid": roleid}))
    error(reader, reader.get_user("token", token), 403, NO_TOKEN)
    error(api, api.create_role_x_token(rolename), 404, ROLE_NOT_FOUND)
    error(api, api.create_role_x_token(unique("role-")), 404, ROLE_NOT_FOUND)


@covers("create_user_x_token", "get_user", "update_user", "list_user_groups", "add_user_to_group", "create_role")
def test_user_xtoken_reads_its_own_record_and_others_through_its_roles(api, as_token):
    holder, holder_profile = new_user(api, **rich_profile())
    colleague, colleague_profile = new_user(api, **rich_profile())
    stranger, _ = new_user(api)
    made = ok(api.create_user_x_token("email", holder_profile["email"]))
    assert is_uuid(made["xtoken"]) and made["token"] == holder, made
    assert_expiration(made, DEFAULT_XTOKEN_SECS)
    me = as_token(made["xtoken"])

    # Its own record, whole; changes it must request.
    assert ok(me.get_user("token", holder))["profile"] == holder_profile
    assert ok(me.get_user("email", holder_profile["email"]))["token"] == holder
    error(me, me.update_user("token", holder, {"name": "Changed"}), 403, DENIED)
    error(me, me.delete_user("token", holder), 403, DENIED)
    assert ok(api.get_user("token", holder))["profile"] == holder_profile
    # No other record, no administrator's operation.
    error(me, me.get_user("token", colleague), 403, DENIED)
    refused(me, me.create_role({"rolename": unique("role-")}))
    refused(me, me.create_user_x_token("token", colleague))

    # A role in a group shows it the members of its groups, with what the role's policy shows.
    roleid, rolename, _ = role_with(api, allow(["UserGet"], ["${user_group_members}.profile.name"]))
    groupid, _ = new_group(api)
    ok(api.add_user_to_group("token", holder, groupid, rolename))
    ok(api.add_user_to_group("token", colleague, groupid))
    assert user_groups(me, "token", holder)[groupid]["roleid"] == roleid
    got = ok(me.get_user("token", colleague))
    assert got["profile"] == {
        "email": MASK,
        "login": MASK,
        "name": colleague_profile["name"],
    }, got
    error(me, me.get_user("token", stranger), 403, DENIED)
    # Its own record is still whole.
    assert ok(me.get_user("token", holder))["profile"] == holder_profile
    # Out of the group: the colleague is out of reach again.
    ok(api.remove_user_from_group("token", holder, groupid))
    error(me, me.get_user("token", colleague), 403, DENIED)

    # A lifetime; an unknown user has no token.
    assert_expiration(ok(api.create_user_x_token("token", holder, {"finaltime": "1h"})), 3600)
    error(api, api.create_user_x_token("email", new_email()), 404, "The user record was not found")
    # Its user deleted, the token is no token at all: on every replica within the change feed's
    # bound (on the replica that deleted the user too, where a token already in use may act
    # until the feed is next read; RoleDelete forgets its tokens there at once).
    ok(api.delete_user("token", holder))
    deadline = time.monotonic() + FEED_BOUND_SECS
    while me.create_token("email", new_email()).get("message") != NO_TOKEN and time.monotonic() < deadline:
        time.sleep(0.05)
    error(me, me.get_user("token", holder), 403, NO_TOKEN)


@covers("bulk_list_unlock", "bulk_list_group_users", "add_user_to_group", "create_group", "create_role_x_token")
def test_bulk_list_group_users(api, as_token):
    groupid, groupname = new_group(api)
    roleid, rolename, _ = role_with(
        api, allow(["BulkListUnlock", "BulkListGroupUsers"], ["users.profile.name", "users.profile.email"])
    )
    members = [new_user(api, **rich_profile()) for _ in range(3)]
    for i, (token, _) in enumerate(members):
        ok(api.add_user_to_group("token", token, groupid, rolename if i == 0 else None))
    outsider, _ = new_user(api)

    unlockuuid = ok(api.bulk_list_unlock())["unlockuuid"]
    for ref in (groupid, groupname):
        answer = ok(api.bulk_list_group_users(unlockuuid, ref, 0, 10))
        assert answer["total"] == 3 and len(answer["rows"]) == 3, answer
        rows = {row["token"]: row for row in answer["rows"]}
        assert set(rows) == {token for token, _ in members}, answer
        assert outsider not in rows
        for i, (token, profile) in enumerate(members):
            assert rows[token]["profile"] == profile, rows[token]
            assert rows[token]["rolename"] == (rolename if i == 0 else None), rows[token]
    # Paged, in a stable order.
    first = ok(api.bulk_list_group_users(unlockuuid, groupid, 0, 2))
    rest = ok(api.bulk_list_group_users(unlockuuid, groupid, 2, 2))
    assert (first["total"], len(first["rows"]), rest["total"], len(rest["rows"])) == (3, 2, 3, 1), (first, rest)
    paged = [row["token"] for row in first["rows"] + rest["rows"]]
    assert sorted(paged) == sorted(token for token, _ in members), paged
    assert ok(api.bulk_list_group_users(unlockuuid, groupid, 3, 10))["rows"] == []

    # Through a role token: the fields its policy shows, the others "***" or left out.
    reader = as_token(role_token(api, roleid)["xtoken"])
    own_unlock = ok(reader.bulk_list_unlock())["unlockuuid"]
    answer = ok(reader.bulk_list_group_users(own_unlock, groupname, 0, 10))
    assert answer["total"] == 3, answer
    for row in answer["rows"]:
        profile = dict(members)[row["token"]]
        assert row["profile"] == {"email": profile["email"], "name": profile["name"], "login": MASK}, row
    # An unlockuuid is its caller's own.
    error(reader, reader.bulk_list_group_users(unlockuuid, groupid, 0, 10), 403, "unlockuuid")

    error(api, api.bulk_list_group_users(unlockuuid, unique("group-"), 0, 10), 404, GROUP_NOT_FOUND)
    error(api, api.bulk_list_group_users("", groupid, 0, 10), 400, "Missing API request parameters: unlockuuid")


@covers("create_role", "create_policy", "link_policy", "create_role_x_token", "create_user_x_token")
def test_policy_simulate_and_effective_permissions(api):
    token, _ = new_user(api, **rich_profile())
    roleid, rolename, policyid = role_with(api, allow(["UserGet", "UserSearch"], ["users.profile.name"]))
    xtoken = role_token(api, roleid)["xtoken"]

    # The same principal named three ways.
    for principal in ({"roleid": roleid}, {"rolename": rolename}, {"xtoken": xtoken}):
        body = {**principal, "operation": "UserGet", "targetmode": "token", "targetidentity": token}
        sim = ok(call(api, "PolicySimulate", body))
        assert sim["principal"]["kind"] == "role" and sim["principal"]["roleid"] == roleid, sim
        assert (sim["operation"], sim["decision"], sim["policies"]) == ("UserGet", "allow", [policyid]), sim
        assert sorted(sim["masked"]) == ["address", "age", "email", "login"], sim
    for operation, reason in (("UserDelete", None), ("RoleCreate", "administrators only")):
        sim = ok(call(api, "PolicySimulate", {"roleid": roleid, "operation": operation}))
        assert sim["decision"] == "deny", sim
        if reason:
            assert sim["reason"] == reason, sim
    error(api, call(api, "PolicySimulate", {"roleid": roleid, "operation": "UserGett"}), 400, "operation")
    error(api, call(api, "PolicySimulate", {"operation": "UserGet"}), 400, "Missing API request parameters")
    error(api, call(api, "PolicySimulate", {"rolename": unique("role-"), "operation": "UserGet"}), 404, ROLE_NOT_FOUND)

    perms = ok(call(api, "PolicyListEffectivePermissions", {"roleid": roleid}))
    assert perms["total"] == len(perms["rows"]), perms
    by_op = {row["operation"]: row for row in perms["rows"]}
    assert set(by_op) == {"UserGet", "UserSearch"}, perms
    grant = by_op["UserGet"]["grants"]
    assert len(grant) == 1 and grant[0]["fields"] == ["name"] and grant[0]["rolename"] == rolename, perms
    assert by_op["UserGet"]["ownrecord"] is False, perms

    # A user: its own record's operations, and nothing more until it holds a role.
    user_perms = ok(call(api, "PolicyListEffectivePermissions", {"mode": "token", "identity": token}))
    own = {row["operation"] for row in user_perms["rows"] if row["ownrecord"]}
    assert "UserGet" in own and "UserDelete" not in own, user_perms
    assert all(row["grants"] == [] for row in user_perms["rows"]), user_perms
    user_xtoken = ok(api.create_user_x_token("token", token))["xtoken"]
    sim = ok(call(api, "PolicySimulate", {"xtoken": user_xtoken, "operation": "UserUpdate"}))
    assert (sim["principal"]["kind"], sim["decision"]) == ("user", "deny"), sim
    own_get = {"xtoken": user_xtoken, "operation": "UserGet", "targetmode": "token", "targetidentity": token}
    sim = ok(call(api, "PolicySimulate", own_get))
    assert (sim["decision"], sim["reason"]) == ("allow", "the user's own record"), sim
    error(api, call(api, "PolicySimulate", {"xtoken": unique(), "operation": "UserGet"}), 404, "access token")


@covers("create_role", "create_policy", "link_policy", "create_role_x_token", "create_user_x_token")
def test_simulation_is_for_administrators(api, as_token):
    token, _ = new_user(api)
    roleid, _, _ = role_with(api, allow(["*"], ["*"]))
    # Even a role every policy action is granted to.
    everything = as_token(role_token(api, roleid)["xtoken"])
    me = as_token(ok(api.create_user_x_token("token", token))["xtoken"])
    for client in (everything, me):
        refused(client, call(client, "PolicySimulate", {"roleid": roleid, "operation": "UserGet"}))
        refused(client, call(client, "PolicyListEffectivePermissions", {"roleid": roleid}))
        refused(client, call(client, "RoleDelete", {"roleid": roleid}))
        refused(client, client.create_role_x_token(roleid))
    # What a policy may grant, it grants.
    assert ok(everything.get_user("token", token))["token"] == token
    ok(call(api, "RoleDelete", {"roleid": roleid}))


@covers("create_group", "get_group", "create_role", "create_policy", "get_policy", "create_role_x_token", "get_user")
def test_access_records_stay_in_their_tenant(tenant_admin, root_api, as_token, client_as):
    admin = tenant_admin.client
    groupid, groupname = new_group(admin)
    policyid, policyname = new_policy(admin, allow(["UserGet"], ["users"]))
    roleid, rolename = new_role(admin)
    ok(admin.link_policy(roleid, policyid))
    # Names are per tenant: the main tenant may use the same ones.
    main_group = ok(root_api.create_group({"groupname": groupname}))["groupid"]
    assert main_group != groupid
    assert ok(root_api.get_group(groupname))["groupid"] == main_group
    error(root_api, root_api.get_policy(policyname), 404, POLICY_NOT_FOUND)
    error(root_api, root_api.link_policy(rolename, policyid), 404, ROLE_NOT_FOUND)
    # A tenant's role token reads the tenant's users, not the main tenant's.
    xtoken = ok(admin.create_role_x_token(roleid))["xtoken"]
    reader = client_as(xtoken, tenant_admin.tenantname)
    inside, _ = new_user(admin)
    main_user, _ = new_user(root_api)
    assert ok(reader.get_user("token", inside))["token"] == inside
    error(reader, reader.get_user("token", main_user), 404, "The user record was not found")
    elsewhere = client_as(xtoken, "main")
    error(elsewhere, elsewhere.get_user("token", main_user), 403, NO_TOKEN)
    ok(root_api.delete_group(main_group))
    ok(root_api.delete_user("token", main_user))


@covers(
    "create_group",
    "get_group",
    "list_all_groups",
    "list_user_groups",
    "update_group",
    "delete_group",
    "add_user_to_group",
    "remove_user_from_group",
    "create_role",
    "update_role",
    "link_policy",
    "create_policy",
    "update_policy",
    "get_policy",
    "list_policies",
    "create_role_x_token",
    "create_user_x_token",
    "bulk_list_group_users",
)
def test_access_operations_need_a_token(bad_api, anon_api):
    u = "00000000-0000-0000-0000-000000000000"
    for c in (bad_api, anon_api):
        error(c, c.create_group({"groupname": unique("group-")}), 403, NO_TOKEN)
        error(c, c.get_group(1), 403, NO_TOKEN)
        error(c, c.list_all_groups(), 403, NO_TOKEN)
        error(c, c.list_user_groups("token", u), 403, NO_TOKEN)
        error(c, c.update_group(1, {"groupdesc": "x"}), 403, NO_TOKEN)
        error(c, c.delete_group(1), 403, NO_TOKEN)
        error(c, c.add_user_to_group("token", u, 1, 1), 403, NO_TOKEN)
        error(c, c.remove_user_from_group("token", u, 1), 403, NO_TOKEN)
        error(c, c.create_role({"rolename": unique("role-")}), 403, NO_TOKEN)
        error(c, c.update_role(1, {"roledesc": "x"}), 403, NO_TOKEN)
        error(c, c.link_policy(1, 1), 403, NO_TOKEN)
        error(c, c.create_policy({"policyname": unique("policy-"), "policy": allow(["*"], ["*"])}), 403, NO_TOKEN)
        error(c, c.update_policy(1, {"policydesc": "x"}), 403, NO_TOKEN)
        error(c, c.get_policy(1), 403, NO_TOKEN)
        error(c, c.list_policies(), 403, NO_TOKEN)
        error(c, c.create_role_x_token(1), 403, NO_TOKEN)
        error(c, c.create_user_x_token("token", u), 403, NO_TOKEN)
        error(c, c.bulk_list_group_users(u, 1, 0, 10), 403, NO_TOKEN)
        for operation in ("RoleDelete", "PolicyDelete", "PolicySimulate", "PolicyListEffectivePermissions"):
            error(c, call(c, operation, {"roleid": 1, "policyid": 1, "operation": "UserGet"}), 403, NO_TOKEN)
