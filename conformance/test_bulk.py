"""Bulk operations and search, all behind an unlockuuid from BulkListUnlock.

Contract §2.2 "Bulk operations", UserSearch, §3.5, §3.15 and MUST 5/6: an unlockuuid is reusable (PY
test_bulk_operations_workflow uses one for the subset list, the full list and the whole paging
loop), a junk one is 403 "The unlockuuid value was not found or is not valid" and a blank or absent
one 400 "Missing API request parameters: unlockuuid"; BulkListUsers skips absent identities and an
empty `users` is an error; BulkListAllUsers honours offset/limit, answers rows with `token` and the
full `profile`, and an empty page past the end; BulkListTokens takes tokenuuids or tokenbases and
answers `total` and `rows` (`[]` when none); BulkDeleteTokens deletes by tokenbase. Issue 5's "done
when": a card tokenized with `unique: true`, bulk-listed by tokenbase, bulk-deleted and listed again
yields `rows: []`.

Tests that reach a bulk operation the vault does not route yet count as not implemented. Each
test covers only the methods that must be routed for it to run, so that one missing operation
does not hide the others.
"""

import uuid

import pytest

from support import covers, error, is_uuid, new_card, new_email, new_user, ok, pending, unique

pytestmark = pending

BAD_UNLOCK = "The unlockuuid value was not found or is not valid"


def unlock(api):
    value = ok(api.bulk_list_unlock())["unlockuuid"]
    assert is_uuid(value), value
    return value


def all_rows(call, page=100):
    """Every row of a paginated bulk listing, walked in order with one unlockuuid."""
    rows, offset, total = [], 0, None
    while True:
        answer = ok(call(offset, page))
        assert isinstance(answer["rows"], list), answer
        if total is None:
            total = answer["total"]
            assert isinstance(total, int) and total >= 0, answer
        rows.extend(answer["rows"])
        if len(answer["rows"]) < page:
            break
        offset += page
    return rows, total


def new_phone():
    """A phone number no other test uses."""
    return f"+44207{uuid.uuid4().int % 10**7:07d}"


def users_by_token(rows):
    return {row["token"]: row for row in rows}


@covers("bulk_list_unlock", "bulk_list_users", "bulk_list_all_users")
def test_bulk_operations_workflow(api):
    """The PY client suite's workflow: one unlockuuid for the subset, the full list and paging."""
    made = [new_user(api, phone=new_phone()) for _ in range(10)]
    u = unlock(api)
    subset = made[:3]
    chosen = ok(api.bulk_list_users(u, [{"mode": "email", "identity": p["email"]} for _, p in subset]))
    assert {row["profile"]["email"] for row in chosen["rows"]} == {p["email"] for _, p in subset}, chosen
    for token, profile in subset:
        assert users_by_token(chosen["rows"])[token]["profile"] == profile

    first = ok(api.bulk_list_all_users(u, 0, 10))
    assert len(first["rows"]) == 10 and first["total"] >= 10, first
    rows, total = all_rows(lambda offset, limit: api.bulk_list_all_users(u, offset, limit))
    assert len(rows) == total
    seen = users_by_token(rows)
    assert len(seen) == len(rows), "a user was listed twice"
    for token, profile in made:
        assert seen[token]["profile"] == profile, seen[token]
    for row in rows:
        assert isinstance(row["profile"], dict) and is_uuid(row["token"]), row


@covers("bulk_list_all_users")
def test_bulk_list_all_users_pages(api):
    for _ in range(4):
        new_user(api)
    u = unlock(api)
    total = ok(api.bulk_list_all_users(u, 0, 1))["total"]
    assert total >= 4
    pages = [ok(api.bulk_list_all_users(u, offset, 2))["rows"] for offset in (0, 2)]
    assert [len(page) for page in pages] == [2, 2], pages
    tokens = [row["token"] for page in pages for row in page]
    assert len(set(tokens)) == 4, tokens
    # The same page asked for again answers the same rows.
    assert [row["token"] for row in ok(api.bulk_list_all_users(u, 0, 2))["rows"]] == tokens[:2]
    past = ok(api.bulk_list_all_users(u, total + 10, 10))
    assert past["rows"] == [] and past["total"] == total, past
    last = ok(api.bulk_list_all_users(u, total - 1, 10))
    assert len(last["rows"]) == 1, last


@covers("bulk_list_users")
def test_bulk_list_users_by_every_mode(api):
    token, profile = new_user(api, phone=new_phone(), custom=unique("cust-"))
    u = unlock(api)
    for mode in ("email", "login", "phone", "custom"):
        rows = ok(api.bulk_list_users(u, [{"mode": mode, "identity": profile[mode]}]))["rows"]
        assert [(row["token"], row["profile"]) for row in rows] == [(token, profile)], (mode, rows)
    # Identities naming no user are skipped, not errors.
    users = [{"mode": "email", "identity": new_email()}, {"mode": "login", "identity": profile["login"]}]
    mixed = ok(api.bulk_list_users(u, users))
    assert [row["token"] for row in mixed["rows"]] == [token], mixed
    nobody = ok(api.bulk_list_users(u, [{"mode": "email", "identity": new_email()}]))
    assert nobody["rows"] == [], nobody


@covers("bulk_list_users")
def test_bulk_list_users_needs_users(api):
    u = unlock(api)
    error(api, api.bulk_list_users(u, []), 400)


@covers("bulk_list_all_user_requests")
def test_bulk_list_all_user_requests(api):
    token, _ = new_user(api)
    rid = ok(api.request_user_update("token", token, {"name": "Bulk"}))["requestuuid"]
    u = unlock(api)
    rows, total = all_rows(lambda offset, limit: api.bulk_list_all_user_requests(u, offset, limit))
    assert total >= 1 and len(rows) == total
    mine = [row for row in rows if row.get("requestuuid") == rid]
    assert len(mine) == 1, rid
    assert mine[0]["token"] == token, mine
    assert ok(api.bulk_list_all_user_requests(u, total + 5, 10))["rows"] == []
    assert len(ok(api.bulk_list_all_user_requests(u, 0, 1))["rows"]) == 1


@covers("bulk_list_all_audit_events")
def test_bulk_list_all_audit_events(api):
    token, _ = new_user(api)
    ok(api.get_user("token", token))
    mine = {row["auditeventuuid"] for row in ok(api.list_user_audit_events("token", token, 0, 10))["rows"]}
    assert mine
    u = unlock(api)
    page = ok(api.bulk_list_all_audit_events(u, 0, 5))
    assert len(page["rows"]) == 5 and page["total"] >= len(mine), page
    for row in page["rows"]:
        assert row["auditeventuuid"] and isinstance(row["auditeventuuid"], str), row
    found, offset = set(), 0
    while not mine <= found:
        rows = ok(api.bulk_list_all_audit_events(u, offset, 100))["rows"]
        assert rows, f"events {mine - found} not listed"
        found.update(row["auditeventuuid"] for row in rows)
        offset += 100
    total = ok(api.bulk_list_all_audit_events(u, 0, 1))["total"]
    assert ok(api.bulk_list_all_audit_events(u, total + 100, 10))["rows"] == []


@covers("bulk_list_tokens", "bulk_delete_tokens")
def test_unique_card_bulk_listed_deleted_and_listed_again(api):
    """Issue 5's "done when", as the JAVA PCI test runs it: one unlockuuid for list, delete, list."""
    card = new_card()
    created = ok(api.create_token("creditcard", card, {"unique": True}))
    tokenuuid, tokenbase = created["tokenuuid"], created["tokenbase"]
    u = unlock(api)
    listed = ok(api.bulk_list_tokens(u, [tokenbase]))
    assert listed["total"] == 1 and len(listed["rows"]) == 1, listed
    row = listed["rows"][0]
    assert (row["tokenuuid"], row["tokenbase"], row["record"], row["tokentype"]) == (
        tokenuuid,
        tokenbase,
        card,
        "creditcard",
    ), row
    ok(api.bulk_delete_tokens(u, [tokenbase]))
    again = ok(api.bulk_list_tokens(u, [tokenbase]))
    assert again["rows"] == [], again
    assert again["total"] == 0, again
    error(api, api.get_token(tokenuuid), 404, "Token not found")
    # The value is free again: a fresh unique token.
    assert ok(api.create_token("creditcard", card, {"unique": True}))["tokenuuid"] != tokenuuid


@covers("bulk_list_tokens", "bulk_delete_tokens")
def test_bulk_tokens_by_either_handle(api):
    cards = [new_card() for _ in range(3)]
    batch = ok(api.create_tokens_bulk([{"tokentype": "creditcard", "record": c} for c in cards], {"unique": True}))
    created = batch["created"]
    u = unlock(api)
    bases = [row["tokenbase"] for row in created]
    listed = ok(api.bulk_list_tokens(u, bases))
    assert listed["total"] == 3, listed
    assert {row["record"] for row in listed["rows"]} == set(cards)
    for row in listed["rows"]:
        assert row["tokentype"] == "creditcard" and row["tokenuuid"] and row["tokenbase"], row
    by_uuid = ok(api.bulk_list_tokens(u, [created[0]["tokenuuid"], str(uuid.uuid4())]))
    assert by_uuid["total"] == 1 and [row["record"] for row in by_uuid["rows"]] == [cards[0]], by_uuid
    # Delete one by tokenuuid and the others by tokenbase.
    ok(api.bulk_delete_tokens(u, [created[0]["tokenuuid"]]))
    assert ok(api.bulk_list_tokens(u, bases))["total"] == 2
    deleted = ok(api.bulk_delete_tokens(u, bases))
    if "deleted" in deleted:
        assert deleted["deleted"] == 2, deleted
    assert ok(api.bulk_list_tokens(u, bases))["rows"] == []
    fresh = ok(api.create_tokens_bulk([{"tokentype": "creditcard", "record": c} for c in cards], {"unique": True}))
    assert fresh["summary"]["duplicates"] == 0 and fresh["summary"]["created"] == 3, fresh


@covers("bulk_list_tokens")
def test_bulk_list_unknown_tokens_is_empty(api):
    u = unlock(api)
    answer = ok(api.bulk_list_tokens(u, [str(uuid.uuid4()), new_card()]))
    assert answer["rows"] == [] and answer["total"] == 0, answer


@covers("bulk_list_files_by_tag")
def test_bulk_list_files_by_tag(api):
    tag = unique("t").lower()
    alice, _ = new_user(api)
    bob, _ = new_user(api)
    a = ok(api.create_file("token", alice, "a.txt", "YQ==", {"tags": [tag, "kyc"]}))["fileuuid"]
    b = ok(api.create_file("token", bob, "b.txt", "Yg==", {"tags": tag.upper()}))["fileuuid"]
    ok(api.create_file("token", bob, "c.txt", "Yw==", {"tags": ["kyc"]}))
    u = unlock(api)
    answer = ok(api.bulk_list_files_by_tag(u, tag, 0, 10))
    rows = {row["fileuuid"]: row for row in answer["rows"]}
    assert set(rows) == {a, b}, answer
    if "total" in answer:
        assert answer["total"] == 2, answer
    assert rows[a]["token"] == alice and rows[b]["token"] == bob, answer
    assert "filedata" not in rows[a]
    page = ok(api.bulk_list_files_by_tag(u, tag, 1, 1))
    assert len(page["rows"]) == 1, page
    assert ok(api.bulk_list_files_by_tag(u, tag, 10, 10))["rows"] == []
    assert ok(api.bulk_list_files_by_tag(u, unique("none"), 0, 10))["rows"] == []


@covers("search_user")
def test_search_user(api):
    local = unique("searchme")
    token, profile = new_user(api, email=f"{local}@example.com", login=unique("finder"))
    u = unlock(api)
    # Partial values: an email is recognised by its "@" (§2.2 UserSearch: mode auto-detected).
    for query in (profile["email"], f"{local}@", f"{local[:-1]}@example", profile["email"].upper()):
        rows = ok(api.search_user(query, u))["rows"]
        found = users_by_token(rows)
        assert token in found, (query, rows)
        assert found[token]["profile"] == profile
    # One small typo (a swapped pair of letters) still finds the user.
    typo = local[:2] + local[3] + local[2] + local[4:] + "@example.com"
    assert token in users_by_token(ok(api.search_user(typo, u))["rows"]), typo
    assert token in users_by_token(ok(api.search_user(profile["login"], u))["rows"])
    assert ok(api.search_user(f"{uuid.uuid4().hex}@nowhere.invalid", u))["rows"] == []
    # A deleted user is no longer found.
    ok(api.delete_user("token", token))
    assert token not in users_by_token(ok(api.search_user(profile["email"], u))["rows"])


BULK_CALLS = {
    "bulk_list_users": lambda c, u: c.bulk_list_users(u, [{"mode": "email", "identity": "a@example.com"}]),
    "bulk_list_all_users": lambda c, u: c.bulk_list_all_users(u, 0, 10),
    "bulk_list_all_user_requests": lambda c, u: c.bulk_list_all_user_requests(u, 0, 10),
    "bulk_list_all_audit_events": lambda c, u: c.bulk_list_all_audit_events(u, 0, 10),
    "bulk_list_tokens": lambda c, u: c.bulk_list_tokens(u, [new_card()]),
    "bulk_delete_tokens": lambda c, u: c.bulk_delete_tokens(u, [new_card()]),
    "bulk_list_files_by_tag": lambda c, u: c.bulk_list_files_by_tag(u, "kyc", 0, 10),
    "search_user": lambda c, u: c.search_user("someone@example.com", u),
}


def per_method(test):
    """Runs `test` once per unlock-guarded method, covering only that method."""
    return pytest.mark.parametrize(
        "method", [pytest.param(name, marks=covers(name), id=name) for name in BULK_CALLS]
    )(test)


@per_method
def test_junk_unlockuuid_is_refused(api, method):
    call = BULK_CALLS[method]
    for junk in (str(uuid.uuid4()), "not-an-unlockuuid"):
        error(api, call(api, junk), 403, BAD_UNLOCK)


@per_method
def test_blank_unlockuuid_is_a_missing_parameter(api, method):
    call = BULK_CALLS[method]
    for blank in ("", None):
        error(api, call(api, blank), 400, "Missing API request parameters: unlockuuid")


@per_method
def test_unlock_is_bound_to_a_valid_token(api, bad_api, anon_api, method):
    call = BULK_CALLS[method]
    u = unlock(api)
    for c in (bad_api, anon_api):
        error(c, call(c, u), 403)
    # The refused calls did not spend or spoil the unlockuuid.
    ok(call(api, u))


@covers("bulk_list_unlock")
def test_unlock_needs_a_valid_token(api, bad_api, anon_api):
    for c in (bad_api, anon_api):
        result = error(c, c.bulk_list_unlock(), 403, "Access denied")
        assert "unlockuuid" not in result
    first, second = unlock(api), unlock(api)
    assert first != second
