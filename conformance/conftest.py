"""Conformance plugin: fixtures, and the per-client-method summary printed at the end of a run.

The suite runs in one of two passes ($CONFORMANCE_PASS). The root pass (the default) calls the
vault with the main tenant's root token ($BUNKER_TOKEN). The tenant pass does what the vendor's
own client test suites do: it creates a fresh tenant with the root token (the client's
create_tenant) and then calls everything with that tenant's admin token (`xtoken`) and
`X-Bunker-Tenant: <its name>`. Tests marked `main_tenant_only` are skipped there; the 403 a tenant
admin gets from those operations is asserted by test_tenants.py in both passes.

Each test names the client methods it asserts with `@covers(...)`. At the end the plugin sorts
every public method of `DatabunkerproAPI` into passing, failing, not implemented (the vault does
not route its operation) or uncovered, prints "N of M client methods pass", writes the result to
$CONFORMANCE_RESULTS (JSON) if set, and fails the run when a method listed in baseline.txt no
longer passes or when an operation the vault routes (openapi.yaml) has no test (both only with
CONFORMANCE_ENFORCE=1, as conformance/run sets: a partial run cannot judge them).
"""

import inspect
import json
import os
import re
from pathlib import Path

import pytest
from databunkerpro import DatabunkerproAPI

from support import (
    TENANT_PASS,
    HttpStatus,
    NotRouted,
    Tenant,
    conformance_pass,
    create_tenant,
    make_client,
    root_token,
    vault_url,
)

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "baseline.txt"
OPENAPI = HERE.parent / "openapi.yaml"

# Client methods that call no /v2 operation, with what they exercise.
NO_OPERATION = {
    "raw_request": "any operation, raw bytes",
    "get_system_metrics": "GET /metrics",
    "parse_prometheus_metrics": "client-side parsing of /metrics",
}


def client_methods():
    """Every public method of the official client, with the /v2 operation it calls."""
    methods = {}
    for name, func in inspect.getmembers(DatabunkerproAPI, inspect.isfunction):
        if name.startswith("_"):
            continue
        found = re.findall(r'_make_request\(\s*"(\w+)"', inspect.getsource(func))
        methods[name] = found[0] if found else None
    return methods


def routed_operations():
    """Operation names openapi.yaml lists (it must list every routed operation)."""
    text = OPENAPI.read_text(encoding="utf-8")
    return set(re.findall(r"^  /v2/(\w+):", text, flags=re.MULTILINE))


def read_baseline():
    if not BASELINE.exists():
        return set()
    lines = BASELINE.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


class Ledger:
    """Outcomes per client method over the whole session."""

    def __init__(self):
        self.outcomes = {}  # method -> list of (outcome, test id)
        self.suite_errors = []

    def record(self, item, outcome):
        for method in covered(item):
            self.outcomes.setdefault(method, []).append((outcome, item.nodeid))

    def classify(self):
        methods = client_methods()
        routed = routed_operations()
        status = {}
        for method, operation in methods.items():
            seen = {outcome for outcome, _ in self.outcomes.get(method, [])}
            if seen & {"failed", "xfailed"}:
                status[method] = "failing"
            elif "not-routed" in seen:
                status[method] = "not implemented"
            elif "passed" in seen:
                status[method] = "passing"
            elif operation is not None and operation in routed:
                status[method] = "routed, no test"
            elif operation is None:
                status[method] = "no test"
            else:
                status[method] = "not implemented"
        return methods, status


LEDGER = Ledger()


def covered(item):
    methods = []
    for mark in item.iter_markers("covers"):
        methods.extend(mark.args)
    return methods


def pytest_configure(config):
    config.addinivalue_line("markers", "covers(*methods): client methods whose behaviour the test asserts")
    config.addinivalue_line("markers", "pending: operations being built; unrouted means not implemented")
    config.addinivalue_line("markers", "main_tenant_only: only the main tenant's root may call it; skipped in the tenant pass")
    config._conformance_pass = conformance_pass()
    HttpStatus.install()
    known = set(client_methods())
    config._conformance_known = known


def pytest_collection_modifyitems(config, items):
    known = config._conformance_known
    for item in items:
        unknown = [m for m in covered(item) if m not in known]
        if unknown:
            raise pytest.UsageError(f"{item.nodeid} covers unknown client methods: {unknown}")
        if config._conformance_pass == TENANT_PASS and item.get_closest_marker("main_tenant_only"):
            item.add_marker(pytest.mark.skip(reason="main tenant only: its 403 to a tenant admin is asserted by test_tenants.py"))


def pytest_runtest_setup(item):
    item.conformance_calls = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and call.excinfo is not None and call.excinfo.errisinstance(NotRouted):
        if item.get_closest_marker("pending"):
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, f"not implemented: {call.excinfo.value}")
            report.conformance = "not-routed"
    if call.when == "call" and report.passed and not hasattr(report, "wasxfail"):
        missing = [m for m in covered(item) if m not in getattr(item, "conformance_calls", set())]
        if missing:
            report.outcome = "failed"
            report.longrepr = f"the test covers {missing} but never called them"
    if call.when == "call":
        if getattr(report, "conformance", None) == "not-routed":
            LEDGER.record(item, "not-routed")
        elif hasattr(report, "wasxfail"):
            LEDGER.record(item, "xfailed")
        elif report.passed:
            LEDGER.record(item, "passed")
        elif report.failed:
            LEDGER.record(item, "failed")
    elif report.failed:
        LEDGER.record(item, "failed")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    methods, status = LEDGER.classify()
    passing = sorted(m for m, s in status.items() if s == "passing")
    baseline = read_baseline()
    regressions = sorted(baseline - set(passing))
    gaps = sorted(m for m, s in status.items() if s in ("routed, no test", "no test"))
    session.config._conformance = {
        "backend": os.environ.get("CONFORMANCE_BACKEND", "vault"),
        "pass": session.config._conformance_pass,
        "methods": {m: {"operation": methods[m], "status": status[m]} for m in sorted(methods)},
        "passing": passing,
        "total": len(methods),
        "regressions": regressions,
        "gaps": gaps,
        "new": sorted(set(passing) - baseline),
    }
    results = os.environ.get("CONFORMANCE_RESULTS")
    if results:
        Path(results).write_text(json.dumps(session.config._conformance, indent=2) + "\n", encoding="utf-8")
    # Only a whole-suite run (conformance/run) can judge regressions and gaps.
    if os.environ.get("CONFORMANCE_ENFORCE") == "1" and (regressions or gaps) and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    summary = getattr(config, "_conformance", None)
    if summary is None:
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"conformance: {summary['backend']}, {summary['pass']} pass")
    by_status = {}
    for method, info in summary["methods"].items():
        by_status.setdefault(info["status"], []).append(method)

    def describe(method):
        operation = summary["methods"][method]["operation"]
        return f"{method} ({operation or NO_OPERATION.get(method, 'no operation')})"

    for label in ("failing", "routed, no test", "no test", "not implemented"):
        names = by_status.get(label, [])
        if names:
            write(f"{label} ({len(names)}):")
            for method in names:
                write(f"  {describe(method)}")
    if summary["regressions"]:
        write(f"REGRESSION: baseline methods no longer passing: {', '.join(summary['regressions'])}")
    if summary["gaps"]:
        write("every client method whose operation is routed needs a test (@covers)")
    if summary["new"]:
        write(f"newly passing, add to conformance/baseline.txt: {', '.join(summary['new'])}")
    write(f"{len(summary['passing'])} of {summary['total']} client methods pass")


@pytest.fixture(scope="session")
def pass_tenant(pytestconfig):
    """The tenant pass's own tenant, created once with the root token (None in the root pass)."""
    if pytestconfig._conformance_pass != TENANT_PASS:
        return None
    tenantid, name, xtoken = create_tenant(DatabunkerproAPI(vault_url(), root_token()), tenantorg="Conformance")
    return Tenant(tenantid, name, xtoken, None)


@pytest.fixture
def api(request, pass_tenant):
    """The official client as this pass's administrator: the root token, or in the tenant pass
    the tenant's admin token with its name in X-Bunker-Tenant."""
    if pass_tenant is None:
        return make_client(root_token(), request.node.conformance_calls)
    return make_client(pass_tenant.xtoken, request.node.conformance_calls, pass_tenant.tenantname)


@pytest.fixture
def bad_api(request, pass_tenant):
    """The official client with a token the vault never issued (and the pass's tenant header)."""
    tenant = pass_tenant.tenantname if pass_tenant else ""
    return make_client("00000000-0000-0000-0000-000000000000", request.node.conformance_calls, tenant)


@pytest.fixture
def anon_api(request, pass_tenant):
    """The official client with no token at all (and the pass's tenant header: public operations
    such as get_shared_record find the tenant by it)."""
    tenant = pass_tenant.tenantname if pass_tenant else ""
    return make_client("", request.node.conformance_calls, tenant)


@pytest.fixture
def client_as(request):
    """Builds the official client with any token and tenant header, its calls recorded."""

    def build(token, tenant=""):
        return make_client(token, request.node.conformance_calls, tenant)

    return build


@pytest.fixture
def root_api(client_as):
    """The official client with the main tenant's root token, in both passes."""
    return client_as(root_token())


@pytest.fixture
def tenant_admin(pass_tenant, api, root_api, client_as):
    """A tenant's admin. The tenant pass: its own tenant and `api` (token and tenant header).
    The root pass: a fresh tenant, its admin token sent without a tenant header (the token
    implies its tenant), deleted afterwards."""
    if pass_tenant is not None:
        yield Tenant(pass_tenant.tenantid, pass_tenant.tenantname, pass_tenant.xtoken, api)
        return
    tenantid, name, xtoken = create_tenant(root_api)
    yield Tenant(tenantid, name, xtoken, client_as(xtoken))
    root_api.delete_tenant(tenantid)

