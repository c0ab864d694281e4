"""An Entra user no one here answers for links themselves, once: their password here, then their second
factor; the link is made only when that approves (mfa/entra/requests.py begin_linking)."""
from __future__ import annotations

import pytest

from mfa.entra import links
from models import AuditEvent, EntraLink
from tests.browser_steps import csrf_token, post_form
from tests.conftest import run_in
from tests.entra_fixture import OTHER_TENANT, PATH, TENANT, read_answer
from tests.entra_fixture import entra, web  # noqa: F401  (fixtures)
from tests.personas import ALICE, PASSWORD


@pytest.fixture
def app_config(app_config, entra):
    return {**app_config, **entra.settings, "EAM_ALLOWED_TENANTS": f"{TENANT},{OTHER_TENANT}"}


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




def test_a_cookie_planted_before_the_password_never_sees_the_answer(web, live, phones, entra, alice, clock):
    """Session fixation: whoever holds the session id from before the password (planted in the person's
    browser) is left behind when the link page moves the flow to a new id."""
    asked_to_link(web, entra, clock)
    planted = web.get_cookie("session").value
    sign_in_here(web)
    assert web.get_cookie("session").value != planted
    attacker = live.app.test_client()
    attacker.set_cookie("session", planted)
    answer_the_call(phones)
    assert "entra-answer" not in attacker.get("/verify").get_data(as_text=True)
    assert "id_token" in read_answer(web.get("/verify").get_data(as_text=True))[1]


def test_one_person_is_linked_to_one_entra_user_of_a_tenant_even_from_two_browsers(live, phones, entra, alice,
                                                                                   clock):
    first, second = live.app.test_client(), live.app.test_client()
    asked_to_link(first, entra, clock)
    asked_to_link(second, entra, clock)  # another Entra user with the same sign-in name
    sign_in_here(first)
    sign_in_here(second)  # both under way before either links: the answer looks again
    phones.wait_idle()
    first_call, second_call = (call.sid for call in phones.calls(to=ALICE))
    for sid in (first_call, second_call):
        phones.answer(sid)
        phones.press(sid, "#")
        phones.wait_idle()
    assert "id_token" in read_answer(first.get("/verify").get_data(as_text=True))[1]
    assert read_answer(second.get("/verify").get_data(as_text=True))[1]["error"] == "access_denied"
    assert len(linked(live)) == 1
    # And once linked, a new attempt for another Entra user is refused before anyone is called.
    third = live.app.test_client()
    asked_to_link(third, entra, clock)
    assert read_answer(sign_in_here(third).get_data(as_text=True))[1]["error"] == "access_denied"
    assert len(phones.calls(to=ALICE)) == 2


@pytest.mark.parametrize("name", ["\u3000alice", "alice\u2003", "\u212alice", " alice"])
def test_only_a_plain_sign_in_name_picks_an_account(web, live, phones, entra, alice, clock, name):
    hint = entra.hint(clock.now(), preferred_username=name)
    web.post(f"{PATH}/authorize", data=entra.form(hint))
    refused = sign_in_here(web)
    assert read_answer(refused.get_data(as_text=True))[1]["error"] == "access_denied"
    assert phones.calls() == [] and linked(live) == []


def test_passwords_on_the_link_page_count_towards_the_sign_in_pages_limits(web, live, phones, entra, alice, clock):
    asked_to_link(web, entra, clock)
    token = csrf_token(web, f"{PATH}/link")
    statuses = [sign_in_here(web, password=f"wrong-{n}", token=token).status_code for n in range(21)]
    assert statuses[-1] == 429  # the 20 a minute per person and address of docs/limits.md, as on /sign-in
    assert set(statuses[:-1]) <= {401, 423}
