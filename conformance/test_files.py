"""File storage: encrypted files of a user, sent and answered in base64.

Contract §2.2 "File storage", §3.13 and MUST 7: `filedata` is standard base64 both ways; an
explicit `mimetype` round-trips exactly; tags are lower-cased, de-duplicated and sorted, and
FileListUserFiles filters by one `tag`; FileReplaceTags answers the stored set; `files` is `[]`
when empty; FileGet takes a `fileuuid` or a `filename` (the newest with that name), `raw: false`
answers JSON, `raw: true` the bytes (with the MIME type as Content-Type and a
Content-Disposition), which the client can only fetch with raw_request: its get_file parses every
answer as JSON. The same content twice answers the existing file with `duplicate: true`. Erasing
the user erases its files.
"""

import base64
import json
import os
import uuid

from support import covers, error, is_uuid, new_email, new_user, ok, unique

NO_FILE = "The file record was not found"
NO_USER = "The user record was not found"


def b64(data):
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    """Decodes standard base64 strictly: only the standard alphabet, no line breaks."""
    assert isinstance(text, str), text
    return base64.b64decode(text, validate=True)


def stored(result):
    """Asserts a FileCreate answer and returns its fileuuid."""
    ok(result)
    assert is_uuid(result["fileuuid"]), result
    return result["fileuuid"]


def listed(api, token, tag=None):
    """The user's files by fileuuid."""
    files = ok(api.list_user_files("token", token, tag=tag))["files"]
    assert isinstance(files, list), files
    return {row["fileuuid"]: row for row in files}


@covers("create_file", "get_file")
def test_binary_round_trip_with_explicit_mime_type(api):
    token, _ = new_user(api)
    content = bytes(range(256)) * 3 + os.urandom(1000)
    name = f"{unique('scan-')}.bin"
    fileuuid = stored(api.create_file("token", token, name, b64(content), {"mimetype": "application/x-conformance"}))
    got = ok(api.get_file("token", token, fileuuid=fileuuid))
    assert got["fileuuid"] == fileuuid
    assert got["filename"] == name
    assert got["mimetype"] == "application/x-conformance"
    assert unb64(got["filedata"]) == content
    assert got["size"] == len(content)
    note = stored(api.create_file("token", token, "note.txt", b64(b"plain words"), {"mimetype": "text/plain"}))
    text = ok(api.get_file("token", token, fileuuid=note))
    assert text["mimetype"] == "text/plain" and unb64(text["filedata"]) == b"plain words"


@covers("create_file", "get_file")
def test_by_filename_and_raw_false(api):
    token, profile = new_user(api)
    name = f"{unique('bill-')}.pdf"
    older = stored(api.create_file("email", profile["email"], name, b64(b"first bill")))
    newer = stored(api.create_file("login", profile["login"], name, b64(b"second bill")))
    assert older != newer
    for raw in (None, False):
        got = ok(api.get_file("token", token, filename=name, raw=raw))
        assert got["fileuuid"] == newer and unb64(got["filedata"]) == b"second bill", got
    by_uuid = ok(api.get_file("email", profile["email"], fileuuid=older, raw=False))
    assert unb64(by_uuid["filedata"]) == b"first bill"
    # The fileuuid wins when both are given.
    assert ok(api.get_file("token", token, fileuuid=older, filename=name))["fileuuid"] == older
    error(api, api.get_file("token", token, filename=f"{unique('none-')}.pdf"), 404, NO_FILE)


@covers("get_file", "raw_request")
def test_raw_download(api):
    token, _ = new_user(api)
    content = b"\x00\x01binary \xff\xfe content" + os.urandom(64)
    fileuuid = stored(api.create_file("token", token, "scan.png", b64(content), {"mimetype": "image/png"}))
    body = {"mode": "token", "identity": token, "fileuuid": fileuuid, "raw": True}
    assert api.raw_request("FileGet", body) == content
    assert api.status == 200
    assert api.headers["Content-Type"] == "image/png"
    disposition = api.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "scan.png" in disposition, disposition
    by_name = api.raw_request("FileGet", {"mode": "token", "identity": token, "filename": "scan.png", "raw": True})
    assert by_name == content
    # Errors stay JSON, also when the raw bytes were asked for.
    missing = json.loads(api.raw_request("FileGet", {**body, "fileuuid": str(uuid.uuid4())}))
    assert missing == {"status": "error", "message": NO_FILE}
    assert api.status == 404
    # The client's own get_file parses the answer as JSON, so it cannot fetch the bytes; JSON works.
    assert unb64(ok(api.get_file("token", token, fileuuid=fileuuid, raw=False))["filedata"]) == content


@covers("create_file", "get_file")
def test_mime_type_detected_when_omitted(api):
    token, _ = new_user(api)
    fileuuid = stored(api.create_file("token", token, "passport.jpg", b64(b"fake passport scan bytes")))
    got = ok(api.get_file("token", token, fileuuid=fileuuid))
    # The quickstart's example: a .jpg is image/jpeg, 24 bytes.
    assert got["mimetype"] == "image/jpeg" and got["size"] == 24, got


@covers("create_file", "list_user_files")
def test_same_content_is_stored_once(api):
    token, _ = new_user(api)
    content = os.urandom(200)
    first = ok(api.create_file("token", token, "a.bin", b64(content)))
    assert first.get("duplicate") is False, first
    again = ok(api.create_file("token", token, "b.bin", b64(content)))
    assert again["fileuuid"] == first["fileuuid"] and again["duplicate"] is True, again
    files = listed(api, token)
    assert list(files) == [first["fileuuid"]]
    assert files[first["fileuuid"]]["filename"] == "a.bin"
    # The same content for another user is that user's own file.
    other, _ = new_user(api)
    theirs = ok(api.create_file("token", other, "a.bin", b64(content)))
    assert theirs["fileuuid"] != first["fileuuid"] and theirs.get("duplicate") is False


@covers("create_file", "list_user_files", "get_file")
def test_tags_are_normalised_and_filter_the_listing(api):
    token, _ = new_user(api)
    passport = ok(api.create_file("token", token, "passport.jpg", b64(b"p"), {"tags": ["Passport", "kyc", "KYC"]}))
    assert passport["tags"] == ["kyc", "passport"], passport
    bill = ok(api.create_file("token", token, "bill.pdf", b64(b"b"), {"tags": "Invoice"}))
    assert bill["tags"] == ["invoice"], bill
    plain = stored(api.create_file("token", token, "plain.txt", b64(b"t")))
    assert ok(api.get_file("token", token, fileuuid=passport["fileuuid"]))["tags"] == ["kyc", "passport"]

    files = listed(api, token)
    assert set(files) == {passport["fileuuid"], bill["fileuuid"], plain}
    assert files[passport["fileuuid"]]["tags"] == ["kyc", "passport"]
    assert files[plain]["tags"] == []
    for row in files.values():
        assert isinstance(row["filename"], str) and row["filename"], row
        assert "filedata" not in row, row
    assert list(listed(api, token, tag="kyc")) == [passport["fileuuid"]]
    assert list(listed(api, token, tag="invoice")) == [bill["fileuuid"]]
    assert listed(api, token, tag="unused") == {}


@covers("replace_file_tags", "list_user_files")
def test_replace_tags(api):
    token, profile = new_user(api)
    fileuuid = stored(api.create_file("token", token, "id.jpg", b64(b"id"), {"tags": ["kyc", "draft"]}))
    replaced = ok(api.replace_file_tags("token", token, fileuuid, ["Verified", "KYC", "kyc"]))
    assert replaced["tags"] == ["kyc", "verified"], replaced
    assert listed(api, token)[fileuuid]["tags"] == ["kyc", "verified"]
    assert listed(api, token, tag="draft") == {}
    assert list(listed(api, token, tag="verified")) == [fileuuid]
    # A single string is one tag; an empty list clears the set.
    assert ok(api.replace_file_tags("email", profile["email"], fileuuid, "Archived"))["tags"] == ["archived"]
    assert ok(api.replace_file_tags("token", token, fileuuid, []))["tags"] == []
    assert listed(api, token)[fileuuid]["tags"] == []


@covers("create_file", "replace_file_tags")
def test_invalid_tags_are_refused(api):
    token, _ = new_user(api)
    error(api, api.create_file("token", token, "a.txt", b64(b"a"), {"tags": ["bad tag!"]}), 400)
    error(api, api.create_file("token", token, "a.txt", b64(b"a"), {"tags": [f"t{i}" for i in range(17)]}), 400)
    assert listed(api, token) == {}
    fileuuid = stored(api.create_file("token", token, "a.txt", b64(b"a"), {"tags": ["ok"]}))
    error(api, api.replace_file_tags("token", token, fileuuid, ["-leading-dash"]), 400)
    assert listed(api, token)[fileuuid]["tags"] == ["ok"]


@covers("list_user_files")
def test_no_files_is_an_empty_list(api):
    token, profile = new_user(api)
    answer = ok(api.list_user_files("token", token))
    assert answer["files"] == []
    assert ok(api.list_user_files("email", profile["email"], tag="kyc"))["files"] == []


@covers("delete_file", "get_file", "list_user_files")
def test_delete(api):
    token, profile = new_user(api)
    gone = stored(api.create_file("token", token, "gone.txt", b64(b"gone")))
    kept = stored(api.create_file("token", token, "kept.txt", b64(b"kept")))
    ok(api.delete_file("email", profile["email"], gone))
    error(api, api.get_file("token", token, fileuuid=gone), 404, NO_FILE)
    error(api, api.get_file("token", token, filename="gone.txt"), 404, NO_FILE)
    error(api, api.delete_file("token", token, gone), 404, NO_FILE)
    assert list(listed(api, token)) == [kept]
    assert unb64(ok(api.get_file("token", token, fileuuid=kept))["filedata"]) == b"kept"
    # Once deleted, the same content is stored anew.
    again = ok(api.create_file("token", token, "gone.txt", b64(b"gone")))
    assert again["fileuuid"] != gone and again.get("duplicate") is False


@covers("get_file", "delete_file", "replace_file_tags")
def test_files_belong_to_their_user(api):
    owner, _ = new_user(api)
    other, _ = new_user(api)
    fileuuid = stored(api.create_file("token", owner, "mine.txt", b64(b"mine")))
    error(api, api.get_file("token", other, fileuuid=fileuuid), 404, NO_FILE)
    error(api, api.get_file("token", other, filename="mine.txt"), 404, NO_FILE)
    error(api, api.replace_file_tags("token", other, fileuuid, ["x"]), 404, NO_FILE)
    error(api, api.delete_file("token", other, fileuuid), 404, NO_FILE)
    assert unb64(ok(api.get_file("token", owner, fileuuid=fileuuid))["filedata"]) == b"mine"


@covers("create_file", "get_file", "list_user_files", "replace_file_tags", "delete_file")
def test_invalid_requests(api):
    token, _ = new_user(api)
    bad = api.create_file("token", token, "a.txt", "not base64!")
    error(api, bad, 400, "The filedata parameter is not valid base64")
    error(api, api.create_file("token", token, "", b64(b"a")), 400)
    error(api, api.create_file("token", token, "x" * 256, b64(b"a")), 400)
    assert listed(api, token) == {}
    error(api, api.get_file("token", token), 400)
    error(api, api.get_file("token", token, fileuuid="not-a-uuid"), 400)
    error(api, api.delete_file("token", token, "not-a-uuid"), 400)
    error(api, api.replace_file_tags("token", token, "not-a-uuid", ["a"]), 400)
    unknown = str(uuid.uuid4())
    error(api, api.get_file("token", token, fileuuid=unknown), 404, NO_FILE)
    error(api, api.delete_file("token", token, unknown), 404, NO_FILE)
    error(api, api.replace_file_tags("token", token, unknown, ["a"]), 404, NO_FILE)


@covers("create_file", "get_file", "list_user_files", "replace_file_tags", "delete_file")
def test_unknown_users(api):
    email = new_email()
    error(api, api.create_file("email", email, "a.txt", b64(b"a")), 404, NO_USER)
    error(api, api.get_file("email", email, filename="a.txt"), 404, NO_USER)
    error(api, api.list_user_files("email", email), 404, NO_USER)
    fileuuid = str(uuid.uuid4())
    error(api, api.replace_file_tags("email", email, fileuuid, ["a"]), 404, NO_USER)
    error(api, api.delete_file("email", email, fileuuid), 404, NO_USER)


@covers("create_file", "get_file", "list_user_files", "replace_file_tags", "delete_file", "raw_request")
def test_denied_without_a_valid_token(api, bad_api, anon_api):
    token, _ = new_user(api)
    secret = unique("Secret").encode()
    fileuuid = stored(api.create_file("token", token, "secret.txt", b64(secret), {"tags": ["kyc"]}))
    raw = {"mode": "token", "identity": token, "fileuuid": fileuuid, "raw": True}
    for c in (bad_api, anon_api):
        error(c, c.create_file("token", token, "more.txt", b64(b"more")), 403, "Access denied")
        result = error(c, c.get_file("token", token, fileuuid=fileuuid), 403, "Access denied")
        assert b64(secret) not in json.dumps(result)
        assert json.loads(c.raw_request("FileGet", raw)) == {"status": "error", "message": "Access denied"}
        error(c, c.list_user_files("token", token), 403, "Access denied")
        error(c, c.replace_file_tags("token", token, fileuuid, ["x"]), 403, "Access denied")
        error(c, c.delete_file("token", token, fileuuid), 403, "Access denied")
    assert list(listed(api, token)) == [fileuuid]
    assert listed(api, token)[fileuuid]["tags"] == ["kyc"]
    assert unb64(ok(api.get_file("token", token, fileuuid=fileuuid))["filedata"]) == secret


@covers("delete_user", "get_file", "list_user_files", "replace_file_tags", "delete_file")
def test_deleted_user_leaves_no_files(api):
    token, profile = new_user(api)
    content = unique("Erasable").encode()
    kept = stored(api.create_file("token", token, "erasable.txt", b64(content), {"tags": ["kyc"]}))
    stored(api.create_file("token", token, "second.bin", b64(os.urandom(100))))
    ok(api.delete_user("token", token))
    for mode, identity in (("token", token), ("email", profile["email"])):
        error(api, api.get_file(mode, identity, fileuuid=kept), 404)
        error(api, api.get_file(mode, identity, filename="erasable.txt"), 404)
        error(api, api.list_user_files(mode, identity), 404, NO_USER)
        error(api, api.list_user_files(mode, identity, tag="kyc"), 404, NO_USER)
        error(api, api.replace_file_tags(mode, identity, kept, ["x"]), 404)
        error(api, api.delete_file(mode, identity, kept), 404)
    raw = api.raw_request("FileGet", {"mode": "token", "identity": token, "fileuuid": kept, "raw": True})
    assert content not in raw and api.status == 404
    # A new user with the same email starts with no files.
    fresh = ok(api.create_user({"email": profile["email"]}))["token"]
    assert ok(api.list_user_files("token", fresh))["files"] == []
    error(api, api.get_file("token", fresh, fileuuid=kept), 404, NO_FILE)
