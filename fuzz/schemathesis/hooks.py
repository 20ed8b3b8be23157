"""Schemathesis hooks (fuzz/schemathesis/run): let generated requests reach records that exist.

Generated identities, uuids and names almost never name a record, so most operations would only
ever answer 404. Before each call, some of the generated values are swapped for live ones:

- `unlockuuid`: a UUID-shaped value becomes a live grant from BulkListUnlock (other values,
  blank or junk, are sent as generated, for the refusals);
- `mode` + `identity` (and `targetmode` + `targetidentity`): for a known mode, the identity of
  one of two users created here (with the app data, file, legal basis, processing activity,
  group, role and policy that the schema's examples name);
- `token`, `tokenuuid`, `fileuuid`, `sessionuuid`, `recorduuid`, `requestuuid`,
  `auditeventuuid`, `brief`, `activity`, `appname`, `groupname`, `rolename`, `policyname`,
  `xtoken`, `connectorname`, and the integers `groupid`, `roleid`, `policyid`, `connectorid`: a
  value the vault answered or accepted earlier in the run.

The connector the schema's examples name (`crm`) is created too, on a host the vault's allow-list
(BUNKER_CONNECTOR_HOSTS, set by fuzz/schemathesis/run) refuses: connector operations reach it and
its user's lookup, and are refused before any name lookup or connection.

Which values are swapped, and for which, is decided by a checksum of the generated value, so a
run is as deterministic as the generated data (one worker). The responses are checked as usual.
"""

import json
import os
import re
import time
import urllib.error
import urllib.request
import zlib

import schemathesis

URL = os.environ["BUNKER_URL"]
TOKEN = os.environ.get("BUNKER_TOKEN", "DEMO")
UUID = re.compile(r"^\s*[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\s*$")

# Request fields naming a record, and the live values seen for each (oldest first, at most 32).
POOLED = ("token", "tokenuuid", "fileuuid", "sessionuuid", "recorduuid", "requestuuid", "auditeventuuid",
          "brief", "activity", "appname", "groupname", "rolename", "policyname", "xtoken", "connectorname")
# Integer fields naming a record, pooled the same way.
POOLED_IDS = ("groupid", "roleid", "policyid", "connectorid")
pools = {name: [] for name in POOLED + POOLED_IDS}

# The group, role and policy the schema's examples name (the policy lets the role read names).
GROUP, ROLE, POLICY = "support-emea", "support-agent", "support-reads-names"
POLICY_DOCUMENT = {"Effect": "Allow", "Action": ["UserGet", "BulkListGroupUsers"],
                   "Resource": ["${target_group_members}.profile.name"]}

USERS = [
    {"login": "john", "email": "john@example.com", "phone": "+44 7700 900123", "custom": "c-john", "name": "John"},
    {"login": "jane", "email": "jane@example.com", "phone": "+44 7700 900456", "custom": "c-jane", "name": "Jane"},
]
# The connector the schema's examples name; its host is not on the allow-list.
CONNECTOR = {"connectorname": "crm", "connectortype": "postgresql", "dbhost": "crm-db.internal.example.com",
             "dbname": "crm", "tablename": "customers", "username": "bunker_reader", "apikey": "s3cret-database-password",
             "identitycolumns": {"email": "email_address", "login": "username"}, "erasure": True, "reports": True}

tokens = {}  # login -> token of the users above
unlock = {"uuid": None, "at": 0.0}


def call(operation, body):
    request = urllib.request.Request(
        f"{URL}/v2/{operation}",
        data=json.dumps(body).encode(),
        headers={"X-Bunker-Token": TOKEN, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def ensure_users():
    """Creates the two users, again whenever one was deleted, each with the records the
    schema's examples name (app data `shop`, the file `passport.jpg`)."""
    for profile in USERS:
        token = tokens.get(profile["login"])
        if token and call("UserGet", {"mode": "token", "identity": token})[0] == 200:
            continue
        status, body = call("UserCreate", {"profile": profile})
        if status != 200:
            continue
        tokens[profile["login"]] = body["token"]
        remember("token", body["token"])
        who = {"mode": "token", "identity": body["token"]}
        call("AppdataCreate", {**who, "appname": "shop", "appdata": {"size": "M"}})
        call("FileCreate", {**who, "filename": "passport.jpg", "filedata": "ZmFrZSBwYXNzcG9ydA==", "tags": ["kyc"]})


def ensure_catalogue():
    """The legal basis, processing activity, group, role and policy the schema's examples name."""
    call("LegalBasisCreate", {"brief": "marketing", "basistype": "consent", "module": "signup", "shortdesc": "Marketing"})
    call("ProcessingActivityCreate", {"activity": "newsletter", "title": "Newsletter"})
    call("ProcessingActivityLinkLegalBasis", {"activity": "newsletter", "brief": "marketing"})
    remember("brief", "marketing")
    remember("activity", "newsletter")
    remember("appname", "shop")
    call("GroupCreate", {"groupname": GROUP, "attributes": {"region": "emea"}})
    call("RoleCreate", {"rolename": ROLE})
    call("PolicyCreate", {"policyname": POLICY, "policy": POLICY_DOCUMENT})
    call("RoleLinkPolicy", {"rolename": ROLE, "policyname": POLICY})
    remember("groupname", GROUP)
    remember("rolename", ROLE)
    remember("policyname", POLICY)


def ensure_connector():
    """The connector the schema's examples name (again when it was deleted or renamed)."""
    status, body = call("ConnectorCreate", CONNECTOR)
    if status == 200:
        remember("connectorid", body["connectorid"])
    remember("connectorname", CONNECTOR["connectorname"])


def ensure_members():
    """The users in the group with the role, and an access token for the role."""
    for token in tokens.values():
        call("GroupAddUser", {"mode": "token", "identity": token, "groupname": GROUP, "rolename": ROLE})
    status, body = call("XTokenCreateForRole", {"rolename": ROLE, "finaltime": "1h"})
    if status == 200:
        remember("xtoken", body["xtoken"])


def remember(name, value):
    pool = pools[name]
    fresh = value.strip() if isinstance(value, str) else isinstance(value, int) and not isinstance(value, bool)
    if fresh and value not in pool:
        pool.append(value)
        del pool[:-32]


def collect(value):
    """Remembers every pooled field of a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in pools:
                remember(key, item)
            collect(item)
    elif isinstance(value, list):
        for item in value:
            collect(item)


def pick(generated, choices):
    """One of `choices` for about two generated values in three; None for the rest."""
    if not choices:
        return None
    h = zlib.crc32(json.dumps(generated, sort_keys=True).encode())
    return None if h % 3 == 0 else choices[h % len(choices)]


def identity_for(mode, generated):
    mode = mode.strip()
    if mode == "token":
        values = [tokens[p["login"]] for p in USERS if p["login"] in tokens]
    elif mode in ("login", "email", "phone", "custom"):
        values = [p[mode] for p in USERS]
    else:
        return None
    return pick(generated, values)


def live_unlock():
    if unlock["uuid"] is None or time.monotonic() - unlock["at"] > 30:
        status, body = call("BulkListUnlock", {})
        if status == 200:
            unlock["uuid"], unlock["at"] = body["unlockuuid"], time.monotonic()
    return unlock["uuid"]


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    if not tokens:
        ensure_catalogue()
        ensure_connector()
        ensure_users()
        ensure_members()
    if isinstance(body.get("unlockuuid"), str) and UUID.match(body["unlockuuid"]):
        live = live_unlock()
        if live:
            body["unlockuuid"] = live
    for mode, identity in (("mode", "identity"), ("targetmode", "targetidentity")):
        if isinstance(body.get(mode), str) and isinstance(body.get(identity), str):
            swapped = identity_for(body[mode], body[identity])
            if swapped is not None:
                body[identity] = swapped
    for name in POOLED:
        if isinstance(body.get(name), str):
            swapped = pick(body[name], pools[name])
            if swapped is not None:
                body[name] = swapped
    for name in POOLED_IDS:
        if isinstance(body.get(name), int) and not isinstance(body[name], bool):
            swapped = pick(body[name], pools[name])
            if swapped is not None:
                body[name] = swapped


@schemathesis.hook
def after_call(context, case, response):
    if response.status_code != 200:
        return
    if isinstance(case.body, dict):
        collect(case.body)
    try:
        collect(json.loads(response.content))
    except ValueError:
        pass
    operation = case.operation.path.rsplit("/", 1)[-1]
    if operation in ("UserDelete", "UserDeleteBulk", "UserRequestApprove"):
        ensure_users()
        ensure_members()
    elif operation == "SystemDeleteUserProfiles":
        # Held profiles keep their identities: restore them (as an operator would) rather than
        # leave every later case without its users.
        try:
            held = json.loads(response.content).get("rows", [])
        except ValueError:
            held = []
        for row in held:
            call("SystemRestoreUserProfile", {"token": row["token"], "tenantid": row["tenantid"], "unlockuuid": live_unlock()})
        ensure_users()
        ensure_members()
    elif operation in ("LegalBasisDelete", "ProcessingActivityDelete", "GroupDelete", "RoleDelete", "PolicyDelete"):
        ensure_catalogue()
        ensure_members()
    elif operation in ("ConnectorDelete", "ConnectorUpdate"):
        ensure_connector()
