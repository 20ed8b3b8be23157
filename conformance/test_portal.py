"""The data subject portal's login: a captcha, a one-time code, and the code's login token.

The suite has no mail server and cannot read a captcha, so it asserts what a client sees without
them: the captcha's shape, the captcha error (HTTP 200) whatever the identity, and the refusal of
a code that was never sent. The code's path end to end is tested in tests/vault/portal_login.rs.
"""

import base64

from support import covers, error, is_uuid, new_email, new_user, ok

CAPTCHA_ERROR = {"status": "error", "message": "captcha-error"}


@covers("create_captcha")
def test_a_captcha_is_a_png(anon_api, bad_api, api):
    # Public: no token needed, and a client that sends some token is not refused.
    for client in (anon_api, bad_api, api):
        created = ok(client.create_captcha())
        assert is_uuid(created["captchaid"]), created
        assert base64.b64decode(created["image"]).startswith(b"\x89PNG\r\n\x1a\n")
        assert isinstance(created["expiration"], int), created


@covers("create_captcha", "prelogin_user")
def test_a_wrong_captcha_answers_captcha_error_whoever_asks(anon_api, api):
    _, profile = new_user(api)
    for identity in (profile["email"], new_email()):
        captcha = ok(anon_api.create_captcha())["captchaid"]
        answer = anon_api.prelogin_user("email", identity, "wrong!", captcha)
        assert answer == CAPTCHA_ERROR, answer
        assert anon_api.status == 200
        # Used up by the wrong answer, and unknown ids alike.
        assert anon_api.prelogin_user("email", identity, "wrong!", captcha) == CAPTCHA_ERROR
    assert anon_api.prelogin_user("phone", "+44 7700 900123", "x", "not-a-captcha") == CAPTCHA_ERROR


@covers("prelogin_user")
def test_prelogin_takes_email_or_phone_only(anon_api):
    captcha = ok(anon_api.create_captcha())["captchaid"]
    error(anon_api, anon_api.prelogin_user("login", "someone", "x", captcha), 400,
          "The mode parameter has an incorrect format")


@covers("login_user")
def test_a_code_never_sent_logs_nobody_in(anon_api, bad_api, api):
    _, profile = new_user(api)
    for client in (anon_api, bad_api):
        for identity in (profile["email"], new_email()):
            error(client, client.login_user("email", identity, "123456"), 403, "The code is not valid or has expired")
    error(anon_api, anon_api.login_user("token", profile["email"], "123456"), 400,
          "The mode parameter has an incorrect format")
