"""Legal bases, agreements and processing activities."""

from support import covers, error, new_email, new_user, ok, unique


def new_basis(api, **options):
    brief = unique("basis-")
    ok(api.create_legal_basis({"brief": brief, **options}))
    return brief


def listed_bases(api):
    return {row["brief"]: row for row in ok(api.list_agreements())["rows"]}


@covers("create_legal_basis", "list_agreements")
def test_create_legal_basis(api):
    brief = new_basis(
        api,
        status="active",
        module="signup",
        fulldesc="Full description",
        shortdesc="Short",
        basistype="contract",
        requiredmsg="Needed to deliver",
        requiredflag=True,
    )
    row = listed_bases(api)[brief]
    assert row["status"] == "active"
    assert row["module"] == "signup"
    assert row["shortdesc"] == "Short"
    assert row["fulldesc"] == "Full description"
    assert row["basistype"] == "contract"
    assert row["requiredmsg"] == "Needed to deliver"
    assert row["requiredflag"] is True
    # Options left out are not sent as nulls by this client; defaults apply.
    minimal = new_basis(api)
    assert listed_bases(api)[minimal]["status"] == "active"


@covers("create_legal_basis")
def test_create_legal_basis_errors(api):
    brief = new_basis(api)
    error(api, api.create_legal_basis({"brief": brief}), 409)
    error(api, api.create_legal_basis({"brief": "Not a brief!"}), 400)
    error(api, api.create_legal_basis({"shortdesc": "no brief"}), 400, "brief")
    error(api, api.create_legal_basis({"brief": unique("basis-"), "status": "maybe"}), 400, "status")


@covers("update_legal_basis", "list_agreements")
def test_update_legal_basis(api):
    brief = new_basis(api, shortdesc="Before", module="m1")
    ok(api.update_legal_basis(brief, {"shortdesc": "After", "status": "inactive", "requiredflag": True}))
    row = listed_bases(api)[brief]
    assert row["shortdesc"] == "After"
    assert row["status"] == "inactive"
    assert row["requiredflag"] is True
    assert row["module"] == "m1"
    error(api, api.update_legal_basis(unique("basis-"), {"shortdesc": "x"}), 404, "The legal basis record was not found")
    error(api, api.update_legal_basis(brief, {"status": "maybe"}), 400)


@covers("delete_legal_basis", "list_agreements")
def test_delete_legal_basis(api):
    brief = new_basis(api)
    ok(api.delete_legal_basis(brief))
    assert brief not in listed_bases(api)
    error(api, api.delete_legal_basis(brief), 404, "The legal basis record was not found")


@covers("accept_agreement", "get_user_agreement", "list_user_agreements")
def test_accept_get_and_list_agreements(api):
    token, profile = new_user(api)
    brief = new_basis(api)
    other = new_basis(api)
    ok(
        api.accept_agreement(
            "email",
            profile["email"],
            brief,
            {"agreementmethod": "web-form", "referencecode": "ref-1", "lastmodifiedby": "conformance"},
        )
    )
    ok(api.accept_agreement("token", token, other, {"status": "pending", "finaltime": "100d"}))
    agreement = ok(api.get_user_agreement("token", token, brief))["agreement"]
    assert agreement["brief"] == brief
    assert agreement["status"] == "active"
    assert agreement["agreementmethod"] == "web-form"
    assert agreement["referencecode"] == "ref-1"
    assert agreement["lastmodifiedby"] == "conformance"
    rows = {row["brief"]: row for row in ok(api.list_user_agreements("login", profile["login"]))["rows"]}
    assert set(rows) == {brief, other}
    assert rows[brief]["status"] == "active"
    assert rows[other]["status"] == "pending"
    assert rows[other]["finaltime"] > 0
    # Accepting again updates the agreement instead of adding a second one.
    ok(api.accept_agreement("token", token, brief, {"referencecode": "ref-2"}))
    assert len(ok(api.list_user_agreements("token", token))["rows"]) == 2
    assert ok(api.get_user_agreement("token", token, brief))["agreement"]["referencecode"] == "ref-2"


@covers("accept_agreement", "get_user_agreement", "list_user_agreements")
def test_agreement_errors(api):
    token, _ = new_user(api)
    brief = new_basis(api)
    error(api, api.accept_agreement("token", token, unique("basis-"), {}), 404, "The legal basis record was not found")
    error(api, api.accept_agreement("email", new_email(), brief, {}), 404, "The user record was not found")
    error(api, api.accept_agreement("token", token, brief, {"status": "maybe"}), 400, "status")
    error(api, api.get_user_agreement("token", token, brief), 404, "The agreement record was not found")
    error(api, api.list_user_agreements("email", new_email()), 404, "The user record was not found")
    assert ok(api.list_user_agreements("token", token))["rows"] == []


@covers("cancel_agreement", "get_user_agreement")
def test_cancel_agreement(api):
    token, _ = new_user(api)
    brief = new_basis(api)
    ok(api.accept_agreement("token", token, brief, {}))
    ok(api.cancel_agreement("token", token, brief))
    assert ok(api.get_user_agreement("token", token, brief))["agreement"]["status"] != "active"
    error(api, api.cancel_agreement("token", token, unique("basis-")), 404)


@covers("revoke_all_agreements", "list_user_agreements")
def test_revoke_all_agreements(api):
    users = [new_user(api)[0] for _ in range(3)]
    brief = new_basis(api)
    for token in users:
        ok(api.accept_agreement("token", token, brief, {}))
    result = ok(api.revoke_all_agreements(brief))
    assert result.get("revoked", 3) == 3
    for token in users:
        [row] = ok(api.list_user_agreements("token", token))["rows"]
        assert row["status"] != "active"
    error(api, api.revoke_all_agreements(unique("basis-")), 404, "The legal basis record was not found")


def activities(api):
    return {row["activity"]: row for row in ok(api.list_processing_activities())["rows"]}


@covers("create_processing_activity", "list_processing_activities")
def test_create_processing_activity(api):
    name = unique("activity-")
    ok(
        api.create_processing_activity(
            {"activity": name, "title": "Newsletter", "script": "s.js", "fulldesc": "Sends mail", "applicableto": "users"}
        )
    )
    row = activities(api)[name]
    assert row["title"] == "Newsletter"
    assert row["fulldesc"] == "Sends mail"
    assert row["applicableto"] == "users"
    error(api, api.create_processing_activity({"activity": name}), 409)
    error(api, api.create_processing_activity({"title": "no name"}), 400, "activity")


@covers("update_processing_activity", "list_processing_activities")
def test_update_processing_activity(api):
    name = unique("activity-")
    renamed = unique("activity-")
    ok(api.create_processing_activity({"activity": name, "title": "Before"}))
    ok(api.update_processing_activity(name, {"title": "After", "newactivity": renamed}))
    rows = activities(api)
    assert name not in rows
    assert rows[renamed]["title"] == "After"
    error(api, api.update_processing_activity(name, {"title": "x"}), 404)


@covers("delete_processing_activity", "list_processing_activities")
def test_delete_processing_activity(api):
    name = unique("activity-")
    ok(api.create_processing_activity({"activity": name}))
    ok(api.delete_processing_activity(name))
    assert name not in activities(api)
    error(api, api.delete_processing_activity(name), 404, "The processing activity record was not found")


@covers(
    "link_processing_activity_to_legal_basis",
    "unlink_processing_activity_from_legal_basis",
    "list_processing_activities",
)
def test_link_and_unlink(api):
    name = unique("activity-")
    ok(api.create_processing_activity({"activity": name}))
    brief = new_basis(api)
    ok(api.link_processing_activity_to_legal_basis(name, brief))
    assert brief in activities(api)[name]["legalbases"]
    ok(api.unlink_processing_activity_from_legal_basis(name, brief))
    assert brief not in activities(api)[name]["legalbases"]
    error(api, api.link_processing_activity_to_legal_basis(name, unique("basis-")), 404)
    error(api, api.link_processing_activity_to_legal_basis(unique("activity-"), brief), 404)


@covers(
    "create_legal_basis",
    "update_legal_basis",
    "delete_legal_basis",
    "list_agreements",
    "accept_agreement",
    "get_user_agreement",
    "list_user_agreements",
    "cancel_agreement",
    "revoke_all_agreements",
    "create_processing_activity",
    "update_processing_activity",
    "delete_processing_activity",
    "link_processing_activity_to_legal_basis",
    "unlink_processing_activity_from_legal_basis",
    "list_processing_activities",
)
def test_denied_without_a_valid_token(api, bad_api, anon_api):
    token, _ = new_user(api)
    brief = new_basis(api)
    name = unique("activity-")
    ok(api.create_processing_activity({"activity": name}))
    for c in (bad_api, anon_api):
        error(c, c.create_legal_basis({"brief": unique("basis-")}), 403, "Access denied")
        error(c, c.update_legal_basis(brief, {"shortdesc": "x"}), 403, "Access denied")
        error(c, c.delete_legal_basis(brief), 403, "Access denied")
        error(c, c.list_agreements(), 403, "Access denied")
        error(c, c.accept_agreement("token", token, brief, {}), 403, "Access denied")
        error(c, c.get_user_agreement("token", token, brief), 403, "Access denied")
        error(c, c.list_user_agreements("token", token), 403, "Access denied")
        error(c, c.cancel_agreement("token", token, brief), 403, "Access denied")
        error(c, c.revoke_all_agreements(brief), 403, "Access denied")
        error(c, c.create_processing_activity({"activity": unique("activity-")}), 403, "Access denied")
        error(c, c.update_processing_activity(name, {"title": "x"}), 403, "Access denied")
        error(c, c.delete_processing_activity(name), 403, "Access denied")
        error(c, c.link_processing_activity_to_legal_basis(name, brief), 403, "Access denied")
        error(c, c.unlink_processing_activity_from_legal_basis(name, brief), 403, "Access denied")
        error(c, c.list_processing_activities(), 403, "Access denied")
    assert brief in listed_bases(api)
    assert name in activities(api)
