"""An Entra user no one here answers for links themselves, once: their password here, then their second
factor; the link is made only when that approves (mfa/entra/requests.py begin_linking)."""
from __future__ import annotations

import pytest

from mfa.entra import links
from models import AuditEvent, EntraLink
from tests.browser_steps import csrf_token, post_form
from tests.conftest import run_in
from tests.entra_fixture import OTHER_TENANT, PATH, TENANT, EntraPlayer, read_answer
from tests.personas import ALICE, PASSWORD


@pytest.fixture
def entra():
    player = EntraPlayer()
    yield player
    player.stop()


@pytest.fixture
def app_config(app_config, entra):
    return {**app_config, **entra.settings, "EAM_ALLOWED_TENANTS": f"{TENANT},{OTHER_TENANT}"}


@pytest.fixture
def web(live):
    return live.app.test_client()


def linked(live) -> list[tuple[str, str, str]]:
    return run_in(live.app, lambda db, svc: [(row.user.username, row.tenant_id, row.object_id)
                                             for row in db.query(EntraLink).all()])


def asked_to_link(web, entra, clock, **hint_args):
    hint = entra.hint(clock.now(), **{"preferred_username": "Alice", **hint_args})
    form = entra.form(hint)
    response = web.post(f"{PATH}/authorize", data=form)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"{PATH}/link")
    assert "Sign in to link your Microsoft account" in web.get(f"{PATH}/link").get_data(as_text=True)
    return hint, form


def sign_in_here(web, password=PASSWORD, token=None):
    """The password on the link page (its username is the Entra sign-in name, not asked)."""
    token = token or csrf_token(web, f"{PATH}/link")
    return web.post(f"{PATH}/link", data={"csrf_token": token, "password": password})


def answer_the_call(phones):
    phones.wait_idle()
    sid = phones.calls(to=ALICE)[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()


def test_a_person_links_themselves_with_password_and_call_and_is_not_asked_again(web, live, phones, entra, alice,
                                                                                    clock):
    hint, form = asked_to_link(web, entra, clock)
    assert phones.calls() == []  # nobody is called before the password
    started = sign_in_here(web)
    assert started.status_code == 302 and started.headers["Location"].endswith("/verify")
    assert linked(live) == []  # not until the second factor approves
    answer_the_call(phones)
    _, fields = read_answer(web.get("/verify").get_data(as_text=True))
    claims = entra.validate(web, fields["id_token"], form=form, hint=hint, now=clock.now())
    assert claims["amr"] == ["tel"]
    assert linked(live) == [("alice", TENANT, hint.oid)]
    events = run_in(live.app, lambda db, svc: [e.detail for e in db.query(AuditEvent).filter_by(event="entra_linked")])
    assert events == [f"tenant {TENANT}, object {hint.oid}, by the person"]
    # The next time, straight to the call.
    again = entra.hint(clock.now(), oid=hint.oid)
    second = live.app.test_client().post(f"{PATH}/authorize", data=entra.form(again))
    assert second.headers["Location"].endswith("/verify")


def test_a_wrong_password_is_refused_on_the_page_and_counted(web, live, phones, entra, alice, clock):
    asked_to_link(web, entra, clock)
    refused = sign_in_here(web, password="not-the-password")
    assert refused.status_code == 401 and "There is a problem" in refused.get_data(as_text=True)
    counted = run_in(live.app, lambda db, svc: (lambda u: u.failed_count + u.unfamiliar_failed_count)(
        db.get(type(alice), alice.id)))
    assert counted == 1  # towards the (smart) lockout, as on the sign-in page
    assert phones.calls() == [] and linked(live) == []
    assert sign_in_here(web).headers["Location"].endswith("/verify")  # the right one still works after


def test_an_unanswered_call_links_no_one(web, live, phones, entra, alice, clock):
    _, form = asked_to_link(web, entra, clock)
    sign_in_here(web)
    clock.advance(minutes=6)  # the sign-in times out
    _, fields = read_answer(web.get("/verify").get_data(as_text=True))
    assert fields["error"] == "access_denied" and fields["state"] == form["state"]
    assert linked(live) == []


def test_cancel_on_the_link_page_tells_microsoft_no(web, live, phones, entra, alice, clock):
    _, form = asked_to_link(web, entra, clock)
    cancelled = post_form(web, f"{PATH}/link/cancel", token_from=f"{PATH}/link")
    _, fields = read_answer(cancelled.get_data(as_text=True))
    assert fields["error"] == "access_denied" and fields["state"] == form["state"]
    assert web.get(f"{PATH}/link").status_code == 400  # nothing pending any more
    assert phones.calls() == []


def test_too_slow_to_sign_in_here_tells_microsoft_no(web, live, phones, entra, alice, clock):
    _, form = asked_to_link(web, entra, clock)
    token = csrf_token(web, f"{PATH}/link")
    clock.advance(minutes=5)
    late = sign_in_here(web, token=token)
    _, fields = read_answer(late.get_data(as_text=True))
    assert fields["error"] == "access_denied" and fields["state"] == form["state"]
    assert phones.calls() == []


def test_a_person_already_linked_to_another_entra_user_of_the_tenant_is_refused(web, live, phones, entra, alice,
                                                                               clock):
    run_in(live.app, lambda db, svc: links.link(db, svc, "alice", TENANT, "0a0a0a0a-0000-1111-2222-333344445555"))
    _, form = asked_to_link(web, entra, clock)
    refused = sign_in_here(web)
    _, fields = read_answer(refused.get_data(as_text=True))
    assert fields["error"] == "access_denied" and fields["state"] == form["state"]
    assert phones.calls() == [] and len(linked(live)) == 1


def test_another_tenant_is_linked_separately(web, live, phones, entra, alice, clock):
    run_in(live.app, lambda db, svc: links.link(db, svc, "alice", TENANT, "0a0a0a0a-0000-1111-2222-333344445555"))
    hint, _ = asked_to_link(web, entra, clock, tid=OTHER_TENANT)
    sign_in_here(web)
    answer_the_call(phones)
    assert "id_token" in read_answer(web.get("/verify").get_data(as_text=True))[1]
    assert ("alice", OTHER_TENANT, hint.oid) in linked(live)


def test_the_link_page_needs_its_csrf_token(web, live, phones, entra, alice, clock):
    asked_to_link(web, entra, clock)
    forged = web.post(f"{PATH}/link", data={"password": PASSWORD})
    assert forged.status_code == 400 and phones.calls() == []


def test_only_the_account_named_by_the_entra_sign_in_name_can_be_linked(web, live, phones, entra, alice, bob,
                                                                        clock):
    """Someone who knows bob's Entra password cannot link bob's Entra user to an account of their own:
    the page asks for the password of the account named like the Entra user, whatever is posted."""
    hint = entra.hint(clock.now(), preferred_username="bob")
    web.post(f"{PATH}/authorize", data=entra.form(hint))
    assert "<strong>bob</strong>" in web.get(f"{PATH}/link").get_data(as_text=True)
    token = csrf_token(web, f"{PATH}/link")
    as_alice = web.post(f"{PATH}/link", data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    # The password was checked against bob's account (the same test password) and bob has no method:
    # no call to alice, no link to alice.
    assert phones.calls(to=ALICE) == []
    assert all(username != "alice" for username, _, _ in linked(live))
    assert read_answer(as_alice.get_data(as_text=True))[1]["error"] == "access_denied"  # bob has no method


def test_an_entra_user_with_no_sign_in_name_is_linked_by_an_operator_only(web, live, phones, entra, alice, clock):
    form = entra.form(entra.hint(clock.now(), drop=("preferred_username",)))
    _, fields = read_answer(web.post(f"{PATH}/authorize", data=form).get_data(as_text=True))
    assert fields["error"] == "access_denied"


