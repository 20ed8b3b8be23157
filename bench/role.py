"""Makes the role of bench/run's roleget: 50 linked policies, one of which lets UserGet see the
name and email profile fields (the rest come back masked), and prints an access token for it.

    python3 bench/role.py URL ROOT_TOKEN [POLICIES]
"""

import json
import sys
import urllib.request

# Operations the other policies grant: a realistic role has many, none about UserGet.
OTHERS = ["TokenGet", "TokenCreate", "AppdataGet", "AgreementGet", "SessionGet", "FileGet",
          "UserRequestGet", "LegalBasisListAgreements", "GroupGet", "AuditListUserEvents"]


def call(url, token, op, body):
    request = urllib.request.Request(f"{url}/v2/{op}", data=json.dumps(body).encode(), method="POST",
                                     headers={"X-Bunker-Token": token, "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        reply = json.load(answer)
    if reply.get("status") != "ok":
        sys.exit(f"{op}: {reply}")
    return reply


def main():
    url, token = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    call(url, token, "RoleCreate", {"rolename": "bench-support"})
    for i in range(count):
        if i == count // 2:
            policy = {"Effect": "Allow", "Action": ["UserGet"], "Resource": ["users.profile.name", "users.profile.email"]}
        elif i % 5 == 0:
            # A deny elsewhere, with a condition: the evaluation has something to weigh.
            policy = {"Effect": "Deny", "Action": [OTHERS[i % len(OTHERS)]], "Resource": ["*"],
                      "Condition": {"StringEquals": {"${request_metadata:purpose}": "marketing"}}}
        else:
            policy = {"Effect": "Allow", "Action": [OTHERS[i % len(OTHERS)], "Bulk*"], "Resource": ["users.*"]}
        call(url, token, "PolicyCreate", {"policyname": f"bench-{i}", "policy": policy})
        call(url, token, "RoleLinkPolicy", {"rolename": "bench-support", "policyname": f"bench-{i}"})
    print(call(url, token, "XTokenCreateForRole", {"rolename": "bench-support", "finaltime": "1h"})["xtoken"])


if __name__ == "__main__":
    main()
