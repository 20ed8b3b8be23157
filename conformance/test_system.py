"""System operations and the client's transport: wrapping-key rotation, metrics, raw requests."""

import json
import os
import re
import uuid

import pytest

from support import covers, error, main_tenant_only, new_user, ok


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
