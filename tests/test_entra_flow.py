"""Microsoft Entra external MFA, end to end: Entra (tests/entra_fixture.py) posts the authorize form, the
person answers the call on the stand-in with #, and the id_token posted back passes Entra's own checks."""
from __future__ import annotations

import pytest

from mfa.entra import links
from tests.conftest import run_in
from tests.entra_fixture import REDIRECT_URI, TENANT, EntraPlayer, PATH, read_answer
from tests.personas import ALICE


@pytest.fixture
def entra():
    player = EntraPlayer()
    yield player
    player.stop()


@pytest.fixture
def app_config(app_config, entra):
    return {**app_config, **entra.settings}


@pytest.fixture
def web(live):
    return live.app.test_client()


def linked(live, user, oid: str) -> None:
    run_in(live.app, lambda db, svc: links.link(db, svc, user.username, TENANT, oid))


def test_a_call_answered_with_hash_sends_entra_a_token_it_accepts(web, live, phones, entra, alice, clock):
    hint = entra.hint(clock.now())
    linked(live, alice, hint.oid)
    form = entra.form(hint)
    started = web.post(f"{PATH}/authorize", data=form)
    assert started.status_code == 302 and started.headers["Location"].endswith("/verify")
    phones.wait_idle()
    sid = phones.calls(to=ALICE)[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()
    page = web.get("/verify")
    assert page.status_code == 200
    action, fields = read_answer(page.get_data(as_text=True))
    assert action == REDIRECT_URI
    assert fields["state"] == form["state"] and "error" not in fields
    claims = entra.validate(web, fields["id_token"], form=form, hint=hint, now=clock.now())
    assert claims["amr"] == ["tel"] and claims["acr"] == "possessionorinherence"
    assert "form-action 'self' https://login.microsoftonline.com" in page.headers["Content-Security-Policy"]
    # Spent once: the page again, or the same request again, gives nothing more.
    assert "id_token" not in web.get("/verify").get_data(as_text=True)
    again = web.post(f"{PATH}/authorize", data=form)
    assert read_answer(again.get_data(as_text=True))[1]["error"] == "access_denied"
