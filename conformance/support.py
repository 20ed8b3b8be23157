"""Helpers shared by the conformance tests: the client wrapper, coverage marks and assertions."""

import os
import random
import uuid

import pytest
import requests
from databunkerpro import DatabunkerproAPI

# The vault's answer for a /v2 operation it does not route.
NOT_ROUTED = "The API request was not found"

covers = pytest.mark.covers
"""`@covers("create_user", ...)`: the client methods whose behaviour a test asserts."""

pending = pytest.mark.pending
"""A test of operations still being built: an unrouted operation counts as not implemented."""

main_tenant_only = pytest.mark.main_tenant_only
"""A test of what only the main tenant's root may do (create, list or delete tenants, rotate the
wrapping key): skipped in the tenant admin pass, where
test_tenants.py::test_main_tenant_only_operations_refuse_a_tenant_admin asserts 403 instead."""

TENANT_PASS = "tenant"
"""$CONFORMANCE_PASS of the pass that runs the suite as a fresh tenant's admin (default: root)."""


def conformance_pass():
    """Which pass this is: "root" (the main tenant's root token) or "tenant" (a tenant admin)."""
    value = os.environ.get("CONFORMANCE_PASS", "root")
    if value not in ("root", TENANT_PASS):
        raise pytest.UsageError(f"CONFORMANCE_PASS must be root or {TENANT_PASS}, not {value!r}")
    return value


def root_token():
    """The main tenant's root token ($BUNKER_TOKEN)."""
    return os.environ.get("BUNKER_TOKEN", "DEMO")


class NotRouted(Exception):
    """The vault answered that it does not route the operation a client method calls."""

    def __init__(self, method):
        super().__init__(f"{method}: {NOT_ROUTED}")
        self.method = method


class HttpStatus:
    """Observes the HTTP status and headers of the client's requests (the client drops them)."""

    last = None
    headers = None
    _post = None

    @classmethod
    def install(cls):
        if cls._post is not None:
            return
        cls._post = requests.post

        def observed_post(*args, **kwargs):
            cls.last = None
            cls.headers = None
            response = cls._post(*args, **kwargs)
            cls.last = response.status_code
            cls.headers = response.headers
            return response

        requests.post = observed_post


# Methods the client calls on itself: calling the first exercises the others.
IMPLIED = {"get_system_metrics": ("parse_prometheus_metrics",)}


class Client:
    """The official client, unchanged, with every call recorded for the coverage summary."""

    def __init__(self, api, calls):
        self._api = api
        self._calls = calls

    def __getattr__(self, name):
        attr = getattr(self._api, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._calls.add(name)
            self._calls.update(IMPLIED.get(name, ()))
            result = attr(*args, **kwargs)
            if isinstance(result, dict) and result.get("message") == NOT_ROUTED and HttpStatus.last == 404:
                raise NotRouted(name)
            return result

        return call

    @property
    def status(self):
        """HTTP status code of the last request."""
        return HttpStatus.last

    @property
    def headers(self):
        """HTTP headers of the last response (case-insensitive keys)."""
        return HttpStatus.headers


def vault_url():
    return os.environ.get("BUNKER_URL", "http://127.0.0.1:3000")


def make_client(token, calls, tenant=""):
    return Client(DatabunkerproAPI(vault_url(), token, tenant), calls)


def unique(prefix="u"):
    """A value no other test uses (the vault is shared by the whole session)."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def new_tenant_name():
    """A tenant name no other test uses (lower-case letters, digits and hyphens)."""
    return unique("conf-")


class Tenant:
    """A tenant and its admin: `client` sends its admin token (`xtoken`)."""

    def __init__(self, tenantid, tenantname, xtoken, client):
        self.tenantid = tenantid
        self.tenantname = tenantname
        self.xtoken = xtoken
        self.client = client


def create_tenant(root, name=None, **options):
    """Creates a tenant through the client's create_tenant with `root` (a client or the raw
    DatabunkerproAPI); returns (tenantid, tenantname, xtoken)."""
    name = name or new_tenant_name()
    created = ok(root.create_tenant({"tenantname": name, "tenantorg": f"Org of {name}", **options}))
    assert isinstance(created["tenantid"], int) and created["tenantid"] > 1, created
    assert is_uuid(created["xtoken"]), created
    return created["tenantid"], name, created["xtoken"]


def new_email():
    return f"{unique('conf')}@example.com"


def ok(result):
    """Asserts a success answer and returns it."""
    assert isinstance(result, dict), result
    assert result.get("status") == "ok", result
    return result


def error(client, result, code, message=None):
    """Asserts an error answer with the HTTP status `code` (and `message` inside its message)."""
    assert isinstance(result, dict), result
    assert result.get("status") == "error", result
    assert isinstance(result.get("message"), str) and result["message"], result
    assert client.status == code, (client.status, result)
    if message is not None:
        assert message in result["message"], result
    return result


def new_user(api, **extra):
    """Creates a user with a fresh email and login; returns (token, profile)."""
    profile = {"email": new_email(), "login": unique("login"), "name": "Conformance"}
    profile.update(extra)
    token = ok(api.create_user(profile))["token"]
    return token, profile


def luhn_valid(digits):
    """True when the digit string passes the Luhn check."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def new_card(length=16):
    """A random Luhn-valid card number no other test uses."""
    body = str(random.choice("3456")) + "".join(random.choice("0123456789") for _ in range(length - 2))
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


def is_uuid(value):
    """True for a UUID-shaped string (8-4-4-4-12 hex)."""
    try:
        return isinstance(value, str) and len(value) == 36 and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
