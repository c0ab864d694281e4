"""Microsoft Entra external MFA, end to end: Entra (tests/entra_fixture.py) posts the authorize form, the
person answers the call on the stand-in with #, and the id_token posted back passes Entra's own checks."""
from __future__ import annotations

import pytest

from mfa.entra import links, signing_keys
from tests.conftest import run_in
from tests.entra_fixture import PATH, REDIRECT_URI, TENANT, read_answer
from tests.entra_fixture import entra, web  # noqa: F401  (fixtures)
from tests.personas import ALICE
from tests.test_races import postgres_only


@pytest.fixture
def app_config(app_config, entra):
    return {**app_config, **entra.settings}


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


def test_an_answer_reads_the_sign_in_as_it_stands_now(web, live, phones, entra, alice, clock):
    """A cancel that loaded the sign-in just before the call approved it must not tell Microsoft no
    while the database says yes: the answer looks again once it holds the request."""
    from models import Authentication
    from mfa.entra import requests as entra_requests

    hint = entra.hint(clock.now())
    linked(live, alice, hint.oid)
    form = entra.form(hint)
    web.post(f"{PATH}/authorize", data=form)
    rt = live.app.extensions["mfa"]
    with rt.sessions() as db:
        stale = db.query(Authentication).one()  # loaded while the call still rings
        assert stale.status == "pending"
        phones.wait_idle()
        sid = phones.calls(to=ALICE)[-1].sid
        phones.answer(sid)
        phones.press(sid, "#")
        phones.wait_idle()
        reply = entra_requests.answer(db, rt.services, rt.settings.entra, stale)
        db.commit()
    assert reply.approved and "id_token" in reply.fields


@postgres_only
def test_twenty_first_fetches_of_the_keys_make_one_key(live, entra):
    from tests.helpers import run_together

    def fetch():
        return tuple(k["kid"] for k in live.app.test_client().get(f"{PATH}/keys").get_json()["keys"])

    assert len(set(run_together([fetch] * 20))) == 1
    assert run_in(live.app, lambda db, svc: len(signing_keys.listed(db))) == 1
