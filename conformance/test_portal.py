"""The data subject portal's login: a captcha, a one-time code, and the code's login token.

The pinned client has no methods for CaptchaCreate, UserPrelogin and UserLogin (newer clients
call them `create_captcha`, `prelogin_user` and `login_user`), so they are called with its
`raw_request`, with the bodies those methods send. The suite has no mail server and cannot read
a captcha: it asserts what a client sees without them (the captcha's shape, the captcha error
whatever the identity, the refusal of a code never sent). The code's path end to end is tested
in tests/vault/portal_login.rs.
"""

import base64
import json

from support import covers, is_uuid, new_email, new_user, ok

CAPTCHA_ERROR = {"status": "error", "message": "captcha-error"}
INVALID_CODE = "The code is not valid or has expired"


def call(client, operation, data=None):
    return json.loads(client.raw_request(operation, data))


def prelogin(client, mode, identity, code, captchacode):
    return call(client, "UserPrelogin", {"mode": mode, "identity": identity, "code": code, "captchacode": captchacode})


def login(client, mode, identity, smscode):
    return call(client, "UserLogin", {"mode": mode, "identity": identity, "smscode": smscode})


@covers("raw_request")
def test_a_captcha_is_a_png(anon_api, bad_api, api):
    # Public: no token needed, and a client that sends some token is not refused.
    for client in (anon_api, bad_api, api):
        created = ok(call(client, "CaptchaCreate"))
        assert client.status == 200
        assert is_uuid(created["captchaid"]), created
        assert base64.b64decode(created["image"]).startswith(b"\x89PNG\r\n\x1a\n")
        assert isinstance(created["expiration"], int), created


@covers("raw_request")
def test_a_wrong_captcha_answers_captcha_error_whoever_asks(anon_api, api):
    _, profile = new_user(api)
    for identity in (profile["email"], new_email()):
        captcha = ok(call(anon_api, "CaptchaCreate"))["captchaid"]
        assert prelogin(anon_api, "email", identity, "wrong!", captcha) == CAPTCHA_ERROR
        assert anon_api.status == 200
        # Used up by the wrong answer.
        assert prelogin(anon_api, "email", identity, "wrong!", captcha) == CAPTCHA_ERROR
    assert prelogin(anon_api, "phone", "+44 7700 900123", "x", "not-a-captcha") == CAPTCHA_ERROR
    answer = prelogin(anon_api, "login", "someone", "x", "not-a-captcha")
    assert (anon_api.status, answer) == (400, {"status": "error", "message": "The mode parameter has an incorrect format"})


@covers("raw_request")
def test_a_code_never_sent_logs_nobody_in(anon_api, bad_api, api):
    _, profile = new_user(api)
    for client in (anon_api, bad_api):
        for identity in (profile["email"], new_email()):
            answer = login(client, "email", identity, "123456")
            assert (client.status, answer) == (403, {"status": "error", "message": INVALID_CODE})
