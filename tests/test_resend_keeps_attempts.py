"""A new code never resets the count of wrong ones (NIST SP 800-63B-4 §3.1.3.2; issue 14)."""
from __future__ import annotations

import dataclasses

import pytest

from mfa.limits import CODE_ATTEMPTS, RESEND_WAIT, Limits
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import start_sign_in


def wrong_for(code: str) -> str:
    return "123456" if code != "123456" else "654321"


@pytest.mark.parametrize("setting", [None, 3, 8], ids=["default", "LIMIT_CODE_ATTEMPTS=3", "LIMIT_CODE_ATTEMPTS=8"])
def test_wrong_codes_before_and_after_a_resend_add_up_to_the_limit(api, runtime, clock, alice, setting):
    fake = FakeTelephony()
    use_fake(runtime, fake)
    if setting is not None:  # the limit is the published number, whatever it is set to
        runtime.services = dataclasses.replace(runtime.services, limits=Limits({CODE_ATTEMPTS: setting}))
    allowed = runtime.services.limits.number(CODE_ATTEMPTS)
    auth = start_sign_in(api, "alice")
    text = next(m for m in auth["methods"] if m["type"] == "sms")
    checks = f"/authentications/{auth['id']}/checks"
    assert api.post(f"/authentications/{auth['id']}/challenges", {"method_id": text["id"]}).status_code == 201
    before = allowed // 2
    for n in range(before):
        refused = api.post(checks, {"code": wrong_for(fake.texts[-1][1])})
        assert refused.get_json()["attempts_left"] == allowed - n - 1
    clock.advance(runtime.services.limits.window_seconds(RESEND_WAIT) + 1)
    resent = api.post(f"/authentications/{auth['id']}/challenges", {"method_id": text["id"]})
    assert resent.status_code == 201, resent.get_json()
    assert len(fake.texts) == 2
    assert api.get(f"/authentications/{auth['id']}").get_json()["attempts_left"] == allowed - before
    for n in range(before, allowed - 1):
        refused = api.post(checks, {"code": wrong_for(fake.texts[-1][1])})
        assert refused.status_code == 400 and refused.get_json()["attempts_left"] == allowed - n - 1
    last = api.post(checks, {"code": wrong_for(fake.texts[-1][1])})
    assert last.status_code == 423 and last.get_json()["error"] == "too_many_attempts"
    # The new code itself no longer helps: the sign-in ended at the limit.
    assert api.post(checks, {"code": fake.texts[-1][1]}).status_code == 423
    assert api.get(f"/authentications/{auth['id']}").get_json()["reason"] == "too_many_attempts"
