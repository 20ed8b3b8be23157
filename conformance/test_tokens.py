"""Format-preserving tokens: a card or an email exchanged for a tokenuuid and a tokenbase.

Contract §2.2 "Format-preserving tokens", §3.3 and MUST 6: a creditcard tokenbase is Luhn-valid,
as long as the card and not the card; TokenGet and TokenDelete take the tokenuuid or the
tokenbase, and a deletion removes both; `unique: true` answers the existing token, and deleting
it frees the value for a fresh one; TokenCreateBulk answers `created[{tokenuuid, tokenbase,
record, tokentype}]`, `num` and `summary{created, duplicates, errors, total}`, and an empty
batch is an error; an unknown token is 404 "Token not found".
"""

import uuid

from support import covers, error, is_uuid, luhn_valid, new_card, new_email, ok

NOT_FOUND = "Token not found"


def token_pair(result):
    """Asserts a TokenCreate answer and returns (tokenuuid, tokenbase)."""
    ok(result)
    assert is_uuid(result["tokenuuid"]), result
    assert isinstance(result["tokenbase"], str) and result["tokenbase"], result
    return result["tokenuuid"], result["tokenbase"]


def assert_card_tokenbase(card, tokenbase):
    assert tokenbase.isdigit(), tokenbase
    assert len(tokenbase) == len(card), (card, tokenbase)
    assert luhn_valid(tokenbase), tokenbase
    assert tokenbase != card


@covers("create_token", "get_token")
def test_card_token_is_format_preserving(api):
    for length in (12, 13, 15, 16, 19):
        card = new_card(length)
        tokenuuid, tokenbase = token_pair(api.create_token("creditcard", card))
        assert_card_tokenbase(card, tokenbase)
        for handle in (tokenuuid, tokenbase):
            found = ok(api.get_token(handle))
            assert found["record"] == card, found
            assert found["tokenuuid"] == tokenuuid and found["tokenbase"] == tokenbase, found
            assert found["tokentype"] == "creditcard", found


@covers("create_token", "get_token")
def test_tokenbases_are_drawn_not_derived(api):
    card = new_card()
    bases = {token_pair(api.create_token("creditcard", card))[1] for _ in range(5)}
    # Without `unique` every call is a new token; a tokenbase computed from the card would repeat.
    assert len(bases) == 5, bases
    for base in bases:
        assert_card_tokenbase(card, base)
        assert ok(api.get_token(base))["record"] == card


@covers("create_token", "get_token")
def test_email_token(api):
    email = new_email()
    tokenuuid, tokenbase = token_pair(api.create_token("email", email))
    assert tokenbase != email
    assert email.split("@")[0] not in tokenbase
    assert "@" in tokenbase, tokenbase
    for handle in (tokenuuid, tokenbase):
        found = ok(api.get_token(handle))
        assert found["record"] == email and found["tokentype"] == "email", found


@covers("create_token", "get_token")
def test_unique_answers_the_existing_token(api):
    card = new_card()
    first = token_pair(api.create_token("creditcard", card, {"unique": True}))
    assert token_pair(api.create_token("creditcard", card, {"unique": True})) == first
    # A lifetime on a repeated unique create is accepted (it restarts the countdown).
    assert token_pair(api.create_token("creditcard", card, {"unique": True, "finaltime": "12m"})) == first
    # Without `unique` the same card gets a token of its own.
    other = token_pair(api.create_token("creditcard", card))
    assert other[0] != first[0] and other[1] != first[1]
    assert ok(api.get_token(first[0]))["record"] == card


@covers("create_token", "delete_token", "get_token")
def test_delete_by_tokenuuid_removes_both_forms(api):
    card = new_card()
    tokenuuid, tokenbase = token_pair(api.create_token("creditcard", card, {"unique": True}))
    ok(api.delete_token(tokenuuid))
    error(api, api.get_token(tokenuuid), 404, NOT_FOUND)
    error(api, api.get_token(tokenbase), 404, NOT_FOUND)
    error(api, api.delete_token(tokenuuid), 404, NOT_FOUND)
    error(api, api.delete_token(tokenbase), 404, NOT_FOUND)
    # The unique slot is free again: a fresh token, not the deleted one.
    again = token_pair(api.create_token("creditcard", card, {"unique": True}))
    assert again[0] != tokenuuid
    assert ok(api.get_token(again[1]))["record"] == card


@covers("create_token", "delete_token", "get_token")
def test_delete_by_tokenbase_removes_both_forms(api):
    email = new_email()
    tokenuuid, tokenbase = token_pair(api.create_token("email", email, {"unique": True}))
    ok(api.delete_token(tokenbase))
    error(api, api.get_token(tokenbase), 404, NOT_FOUND)
    error(api, api.get_token(tokenuuid), 404, NOT_FOUND)
    again = token_pair(api.create_token("email", email, {"unique": True}))
    assert again[0] != tokenuuid
    # Deleting one token leaves the others of the same value alone.
    plain = token_pair(api.create_token("email", email))
    ok(api.delete_token(again[0]))
    assert ok(api.get_token(plain[0]))["record"] == email


@covers("create_token", "get_token")
def test_token_lifetimes_are_accepted(api):
    for options in ({"slidingtime": "30d"}, {"finaltime": "12m"}, {"slidingtime": "1d", "finaltime": "1y"}):
        card = new_card()
        tokenuuid, _ = token_pair(api.create_token("creditcard", card, options))
        assert ok(api.get_token(tokenuuid))["record"] == card


@covers("create_tokens_bulk", "get_token", "delete_token")
def test_bulk_create(api):
    cards = [new_card(), new_card(15), new_card(19)]
    records = [{"tokentype": "creditcard", "record": card} for card in cards]
    result = ok(api.create_tokens_bulk(records, {"unique": True}))
    assert result["num"] == 3, result
    assert result["summary"] == {"created": 3, "duplicates": 0, "errors": 0, "total": 3}, result
    created = result["created"]
    assert [row["record"] for row in created] == cards, created
    for card, row in zip(cards, created):
        assert row["tokentype"] == "creditcard", row
        assert is_uuid(row["tokenuuid"]), row
        assert_card_tokenbase(card, row["tokenbase"])
        assert ok(api.get_token(row["tokenbase"]))["record"] == card
        assert ok(api.get_token(row["tokenuuid"]))["tokenbase"] == row["tokenbase"]

    # The same batch again, unique: every record is a duplicate of its existing token.
    repeat = ok(api.create_tokens_bulk(records, {"unique": True}))
    assert repeat["summary"] == {"created": 0, "duplicates": 3, "errors": 0, "total": 3}, repeat
    first = {row["record"]: row["tokenuuid"] for row in created}
    for row in repeat["created"]:
        assert row["tokenuuid"] == first[row["record"]], repeat

    # Deleted tokens free their values: the batch creates afresh, with no duplicates.
    for row in created:
        ok(api.delete_token(row["tokenbase"]))
    fresh = ok(api.create_tokens_bulk(records, {"unique": True}))
    assert fresh["num"] == 3, fresh
    assert fresh["summary"] == {"created": 3, "duplicates": 0, "errors": 0, "total": 3}, fresh
    assert {row["tokenuuid"] for row in fresh["created"]}.isdisjoint(first.values())


@covers("create_tokens_bulk", "get_token")
def test_bulk_create_mixed_types_and_options(api):
    card, email = new_card(), new_email()
    records = [{"tokentype": "creditcard", "record": card}, {"tokentype": "email", "record": email}]
    result = ok(api.create_tokens_bulk(records, {"finaltime": "12m", "slidingtime": "30d"}))
    assert result["num"] == 2 and result["summary"]["created"] == 2, result
    rows = result["created"]
    assert [(row["tokentype"], row["record"]) for row in rows] == [("creditcard", card), ("email", email)]
    assert_card_tokenbase(card, rows[0]["tokenbase"])
    assert ok(api.get_token(rows[1]["tokenuuid"]))["record"] == email


@covers("create_tokens_bulk")
def test_bulk_create_counts_refused_records(api):
    card = new_card()
    records = [{"tokentype": "creditcard", "record": card}, {"tokentype": "creditcard", "record": "12ab"}]
    result = ok(api.create_tokens_bulk(records))
    assert result["summary"] == {"created": 1, "duplicates": 0, "errors": 1, "total": 2}, result
    assert [row["record"] for row in result["created"]] == [card], result
    assert "12ab" not in str(result.get("errors")), result


@covers("create_tokens_bulk")
def test_empty_bulk_is_an_error(api):
    error(api, api.create_tokens_bulk([]), 400)
    error(api, api.create_tokens_bulk([], {"unique": True}), 400)


@covers("create_token")
def test_invalid_values_are_refused(api):
    card = new_card()
    for bad in ("4111", "4111-abcd-1111-1111", "4" * 25, ""):
        result = error(api, api.create_token("creditcard", bad), 400)
        if bad:
            assert bad not in result["message"], result
    for bad in ("not-an-email", "", "   "):
        error(api, api.create_token("email", bad), 400)
    error(api, api.create_token("passport", card), 400)
    error(api, api.create_token("creditcard", card, {"finaltime": "soon"}), 400)


@covers("get_token", "delete_token")
def test_unknown_tokens(api):
    for handle in ("invalid-token", str(uuid.uuid4()), new_card()):
        error(api, api.get_token(handle), 404, NOT_FOUND)
        error(api, api.delete_token(handle), 404, NOT_FOUND)
    error(api, api.get_token(""), 400)


@covers("create_token", "create_tokens_bulk", "get_token", "delete_token")
def test_denied_without_a_valid_token(api, bad_api, anon_api):
    card = new_card()
    tokenuuid, tokenbase = token_pair(api.create_token("creditcard", card))
    records = [{"tokentype": "creditcard", "record": new_card()}]
    for c in (bad_api, anon_api):
        error(c, c.create_token("creditcard", new_card()), 403, "Access denied")
        error(c, c.create_tokens_bulk(records), 403, "Access denied")
        for handle in (tokenuuid, tokenbase):
            result = error(c, c.get_token(handle), 403, "Access denied")
            assert card not in str(result)
            error(c, c.delete_token(handle), 403, "Access denied")
    assert ok(api.get_token(tokenuuid))["record"] == card
