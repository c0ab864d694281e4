"""Change notifications (issue 14): a one-segment text to the person's other phones when a phone,
an app or a phone-app device is added, changed or removed; never to the phone the change is about,
sent only after the change commits, and a failed text never fails the change.

Full numbers appear here only to check where texts went; the code under test logs masked ones.
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from ivr import sms_texts
from ivr.sms_texts import NOTICE_MESSAGE, fits_one_gsm7_segment, notice_message
from mfa import change_notices, checks, limits, methods, phone_registration, push_enrolment, security_info
from mfa.challenges import start_challenge
from mfa.errors import ProviderUnavailable
from mfa.limits import Limits
from mfa.phones import mask
from mfa.unit_of_work import Transactions, use_case
from models import AuditEvent, Method, SendRecord, User
from tests.conftest import run_in
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import add_phone, pyotp_code, secret_from_uri, start_sign_in
from tests.personas import ALICE, MOBILE
from tests.test_push_rules import enrol, signed

OTHER = "+447400555666"  # a second mobile of alice's
FRENCH = "+33612345678"  # a mobile outside TELEPHONY_ALLOWED_COUNTRIES
OFFICE = "+441134960123"  # a Leeds desk phone: calls only
LONGEST_SERVICE = "S" * 30  # SERVICE_NAME's longest (settings.py)


@pytest.fixture
def fake(runtime):
    fake = FakeTelephony()
    use_fake(runtime, fake)
    return fake


def sent(fake) -> list[tuple[str, str]]:
    """The notices the provider was asked to send, once every queued one has gone out."""
    assert change_notices.wait_for_sends()
    return list(fake.notices)


def notice_events(run, user) -> list[AuditEvent]:
    return run(lambda db, svc: list(db.scalars(select(AuditEvent).where(
        AuditEvent.event == change_notices.EVENT, AuditEvent.user_id == user.id).order_by(AuditEvent.id))))


def notice_records(run) -> int:
    return run(lambda db, svc: db.scalar(select(func.count()).select_from(SendRecord).where(
        SendRecord.type == change_notices.SEND_TYPE)))


def begin_change(run, user):
    return run(lambda db, svc: security_info.begin_change(db, svc, db.get(User, user.id), None))


def register_phone_by_text(runtime, run, fake, auth_id, number, kind):
    with runtime.sessions() as s:
        phone_registration.register_phone(Transactions(s), runtime.services, auth_id, number, kind, "sms", None)
    code = next(c for to, c in reversed(fake.texts) if to == number)
    done = run(lambda db, svc: checks.check_code(db, svc, auth_id, code, None))
    assert done.status == "approved"


def add_app(run, clock, user):
    change = begin_change(run, user)
    _, uri = run(lambda db, svc: methods.register_totp(db, svc, change.id, None))
    done = run(lambda db, svc: checks.check_code(db, svc, change.id, pyotp_code(secret_from_uri(uri), clock.now()),
                                                 None))
    assert done.status == "approved"


def remove(run, user, method_id):
    run(lambda db, svc: security_info.remove_method(db, svc, db.get(User, user.id), method_id, None))


def method_of(run, user, type_, kind=None):
    return run(lambda db, svc: db.scalar(select(Method.id).where(
        Method.user_id == user.id, Method.type == type_, Method.verified_at.is_not(None),
        *([Method.kind == kind] if kind else []))))


# --- who is texted ---------------------------------------------------------------------------


def test_adding_a_second_phone_texts_the_first_and_never_the_new_one(runtime, run, fake, alice):
    change = begin_change(run, alice)
    register_phone_by_text(runtime, run, fake, change.id, MOBILE, "alternate")
    assert sent(fake) == [(ALICE, change_notices.PHONE_ADDED)]
    assert [to for to, _ in fake.texts] == [MOBILE]  # the new phone got its code, and only that
    [audited] = notice_events(run, alice)
    assert (audited.outcome, audited.reason) == ("sent", change_notices.PHONE_ADDED)
    assert (audited.detail or "").startswith("1 phone(s) notified") and audited.method == mask(MOBILE)
    assert notice_records(run) == 1  # counted by the day's telephony budget


def test_changing_a_phones_number_texts_the_other_phone_and_the_old_number_not_the_new_one(runtime, run, fake,
                                                                                           alice):
    add_phone(run, alice, OTHER, "alternate", types=("sms",))
    change = begin_change(run, alice)
    register_phone_by_text(runtime, run, fake, change.id, MOBILE, "mobile")  # replaces ALICE: a new binding
    assert sorted(sent(fake)) == sorted([(OTHER, change_notices.PHONE_CHANGED), (ALICE, change_notices.PHONE_CHANGED)])
    [audited] = notice_events(run, alice)
    assert audited.reason == change_notices.PHONE_CHANGED and (audited.detail or "").startswith("2 phone(s)")
    assert notice_records(run) == 2


def test_replacing_the_only_phone_texts_the_old_number_and_not_the_new_one(runtime, run, fake, alice):
    change = begin_change(run, alice)
    register_phone_by_text(runtime, run, fake, change.id, MOBILE, "mobile")  # ALICE was her only phone
    assert sent(fake) == [(ALICE, change_notices.PHONE_CHANGED)]
    assert [to for to, _ in fake.texts] == [MOBILE]  # the new phone: its code, never the notice
    [audited] = notice_events(run, alice)
    assert (audited.outcome, audited.reason) == ("sent", change_notices.PHONE_CHANGED)
    assert method_of(run, alice, "sms", "mobile") is not None and notice_records(run) == 1


def test_removing_a_phone_texts_the_remaining_one(run, fake, alice):
    [other_id] = add_phone(run, alice, OTHER, "alternate", types=("sms",))
    remove(run, alice, other_id)
    assert sent(fake) == [(ALICE, change_notices.PHONE_REMOVED)]


def test_adding_and_removing_an_app_texts_the_phone(run, fake, clock, alice):
    add_app(run, clock, alice)
    assert sent(fake) == [(ALICE, change_notices.APP_ADDED)]
    remove(run, alice, method_of(run, alice, "totp"))
    assert sent(fake) == [(ALICE, change_notices.APP_ADDED), (ALICE, change_notices.APP_REMOVED)]


def test_adding_and_removing_a_phone_app_device_texts_the_phone(runtime, run, fake, client, clock, alice):
    change = begin_change(run, alice)
    started = run(lambda db, svc: push_enrolment.register_push(db, svc, change.id, None))
    key, device = enrol(client, clock, started.url)
    with runtime.sessions() as s:
        challenge = start_challenge(Transactions(s), runtime.services, change.id, started.method.id, None)
        request_id, number = challenge.id, challenge.number_match
    approved = signed(client, clock, key, "POST", f"/device/v1/requests/{request_id}/approve", {"number": number},
                      device)
    assert approved.status_code == 200, approved.json
    assert sent(fake) == [(ALICE, change_notices.DEVICE_ADDED)]
    remove(run, alice, started.method.id)
    assert sent(fake)[-1] == (ALICE, change_notices.DEVICE_REMOVED)


def test_a_first_registration_texts_nobody_but_is_audited(runtime, run, fake, bob):
    auth = start_sign_in(run, "bob", expect="registration_required")
    register_phone_by_text(runtime, run, fake, auth["id"], MOBILE, "mobile")
    assert sent(fake) == []
    [audited] = notice_events(run, bob)
    assert (audited.outcome, audited.detail) == ("none", "0 phone(s) notified")
    assert notice_records(run) == 0


def test_each_number_is_texted_once_and_office_phones_not_at_all(run, fake, clock, alice):
    add_phone(run, alice, ALICE, "alternate", types=("sms",))  # the same mobile, registered twice
    add_phone(run, alice, OFFICE, "office", types=("voice",))  # a desk phone cannot show a text
    add_app(run, clock, alice)
    assert sent(fake) == [(ALICE, change_notices.APP_ADDED)]


def test_a_number_outside_the_allowed_countries_is_not_texted(run, fake, clock, alice):
    add_phone(run, alice, FRENCH, "alternate", types=("sms",))  # registered before the setting changed
    add_app(run, clock, alice)
    assert sent(fake) == [(ALICE, change_notices.APP_ADDED)]
    [audited] = notice_events(run, alice)
    assert "destination not allowed" in (audited.detail or "") and FRENCH not in (audited.detail or "")


def test_nothing_is_texted_once_the_days_telephony_budget_is_spent(runtime, run, fake, clock, alice):
    runtime.services = dataclasses.replace(runtime.services, limits=Limits({limits.TELEPHONY_BUDGET: 3}))

    def spend_the_day(db, svc):
        for n in range(3):
            db.add(SendRecord(at=clock.now() - timedelta(minutes=n), user_id=alice.id, phone_lookup="x", type="sms"))
    run(spend_the_day)
    add_app(run, clock, alice)
    assert sent(fake) == []
    [audited] = notice_events(run, alice)
    assert audited.outcome == "none" and "not sent: budget (1)" in (audited.detail or "")


def test_at_most_five_notices_an_hour_and_the_rest_audited_as_skipped(run, fake, clock, alice):
    """One approved sign-in regenerating recovery codes in a loop: the phone is not flooded."""
    from mfa import recovery_codes

    def regenerate(db, svc):
        recovery_codes.generate(db, svc, db.get(User, alice.id))
    run(regenerate)  # the first set: nothing to tell
    for _ in range(10):
        run(regenerate)
        clock.advance(minutes=1)
    allowed = Limits().number(limits.NOTICES_PER_PERSON)
    assert sent(fake) == [(ALICE, change_notices.RECOVERY_CODES_REGENERATED)] * allowed
    events = notice_events(run, alice)
    assert [e.outcome for e in events] == ["sent"] * allowed + ["none"] * (10 - allowed)
    assert all("5 notices to this person in the last hour" in (e.detail or "") for e in events[5:])
    assert notice_records(run) == 5
    clock.advance(hours=1)
    run(regenerate)  # an hour on: told again
    assert len(sent(fake)) == 6


def test_a_number_at_its_daily_cap_gets_no_notice(runtime, run, fake, clock, alice):
    runtime.services = dataclasses.replace(runtime.services, limits=Limits({limits.SENDS_PER_NUMBER_DAY: 3}))
    [other_id] = add_phone(run, alice, OTHER, "alternate", types=("sms",))

    def texts_today(db, svc):
        for n in range(3):  # sign-in texts and calls to alice's mobile in the last 24 hours
            db.add(SendRecord(at=clock.now() - timedelta(hours=n), user_id=alice.id,
                              phone_lookup=svc.vault.keyed_hash(ALICE), type=("sms", "voice", "notice")[n]))
    run(texts_today)
    remove(run, alice, other_id)
    assert sent(fake) == []
    [audited] = notice_events(run, alice)
    assert audited.outcome == "none" and f"{mask(ALICE)} not texted: daily cap (3" in (audited.detail or "")
    assert ALICE not in (audited.detail or "") and notice_records(run) == 1  # the earlier one only


# --- when: after the commit, never for a change that did not happen ----------------------------


def test_the_text_waits_for_the_commit(runtime, run, fake, alice):
    [other_id] = add_phone(run, alice, OTHER, "alternate", types=("sms",))
    seen_when_sending: list[bool] = []

    def check_committed(what, sid):  # the provider is sending: is the phone gone for everyone?
        with runtime.sessions() as other:
            seen_when_sending.append(other.get(Method, other_id) is None)

    fake.during = check_committed
    with runtime.sessions() as s, use_case(s):
        security_info.remove_method(s, runtime.services, s.get(User, alice.id), other_id, None)
        s.flush()
        assert change_notices.wait_for_sends() and fake.notices == []  # nothing before the commit
    assert sent(fake) == [(ALICE, change_notices.PHONE_REMOVED)]
    assert seen_when_sending == [True]


def test_a_rolled_back_change_texts_nobody(runtime, run, fake, alice):
    [other_id] = add_phone(run, alice, OTHER, "alternate", types=("sms",))
    with pytest.raises(RuntimeError), runtime.sessions() as s, use_case(s):
        security_info.remove_method(s, runtime.services, s.get(User, alice.id), other_id, None)
        raise RuntimeError("something after the change failed")
    assert sent(fake) == []
    assert method_of(run, alice, "sms", "alternate") == other_id and notice_records(run) == 0


def test_a_failing_commit_texts_nobody_and_leaves_nothing_for_the_next(runtime, run, fake, alice):
    [other_id] = add_phone(run, alice, OTHER, "alternate", types=("sms",))
    with runtime.sessions() as s:
        def refuse(_session):
            raise RuntimeError("commit refused")
        event.listen(s, "before_commit", refuse)
        with pytest.raises(RuntimeError), use_case(s):
            security_info.remove_method(s, runtime.services, s.get(User, alice.id), other_id, None)
        s.close()  # what the edge does with a request's session when the request ends
        event.remove(s, "before_commit", refuse)
        with use_case(s):  # the same session's next use case commits: the dropped text stays dropped
            s.get(User, alice.id).language = "en-GB"
    assert sent(fake) == []
    assert method_of(run, alice, "sms", "alternate") == other_id  # the change did not happen either


def test_a_session_closed_without_commit_texts_nobody(runtime, run, fake, alice):
    [other_id] = add_phone(run, alice, OTHER, "alternate", types=("sms",))
    s = runtime.sessions()
    security_info.remove_method(s, runtime.services, s.get(User, alice.id), other_id, None)
    s.close()
    with use_case(s):  # a closed session can be used again: the text must not come back with it
        s.get(User, alice.id).language = "en-GB"
    s.close()
    assert sent(fake) == []


def test_a_text_that_fails_never_fails_the_change_and_is_logged_masked_and_audited(runtime, run, alice, caplog):
    fake = FakeTelephony(fail=ProviderUnavailable())
    use_fake(runtime, fake)
    [other_id] = add_phone(run, alice, OTHER, "alternate", types=("sms",))
    with caplog.at_level(logging.WARNING, logger="mfa.change_notices"):
        remove(run, alice, other_id)  # returns normally: the change is made
        assert sent(fake) == [(ALICE, change_notices.PHONE_REMOVED)]
    assert method_of(run, alice, "sms", "alternate") is None
    [warning] = [r for r in caplog.records if r.name == "mfa.change_notices"]
    assert warning.levelno == logging.WARNING and mask(ALICE) in warning.getMessage()
    assert ALICE not in caplog.text
    failed = [e for e in notice_events(run, alice) if e.outcome == "failed"]
    assert len(failed) == 1 and failed[0].method == mask(ALICE) and failed[0].reason == change_notices.PHONE_REMOVED


# --- the words ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en-GB", "cy-GB"])
@pytest.mark.parametrize("change", change_notices.CHANGES)
def test_every_notice_is_one_gsm7_segment_in_english_and_welsh(change, language):
    assert set(NOTICE_MESSAGE[change]) == {"en-GB", "cy-GB"}
    for digits in (None, "0123"):
        body = notice_message(LONGEST_SERVICE, change, language, digits)
        assert fits_one_gsm7_segment(body), (len(body), body)


def test_a_notice_names_at_most_the_last_four_digits_and_says_what_to_do():
    english = notice_message("Secure Sign-in", change_notices.PHONE_ADDED, "en-GB", MOBILE[-4:])
    assert english == ("Secure Sign-in: a phone ending 3456 was added to your sign-in methods. "
                       "If this was not you, call your IT service desk now.")
    welsh = notice_message("Secure Sign-in", change_notices.PHONE_ADDED, "cy-GB", MOBILE[-4:])
    assert welsh.startswith("Secure Sign-in: ychwanegwyd rhif sy'n gorffen gyda 3456")
    assert welsh.endswith(sms_texts.NOTICE_WHAT_TO_DO["cy-GB"])


def test_the_text_through_the_provider_names_the_new_phones_last_digits_only(live, phones, alice):
    """Through Twilio's API to the stand-in, whose inbox holds what each phone received."""
    rt = live.app.extensions["mfa"]
    with rt.sessions() as s, use_case(s):
        change = security_info.begin_change(s, rt.services, s.get(User, alice.id), None)
    with rt.sessions() as s:
        phone_registration.register_phone(Transactions(s), rt.services, change.id, MOBILE, "alternate", "sms", None)
    phones.wait_idle()
    code = phones.messages(to=MOBILE)[-1].body.rsplit("#", 1)[1]
    with rt.sessions() as s, use_case(s):
        assert checks.check_code(s, rt.services, change.id, code, None).status == "approved"
    assert change_notices.wait_for_sends()
    phones.wait_idle()
    [notice] = [m.body for m in phones.messages(to=ALICE)]
    assert notice == notice_message("Secure Sign-in", change_notices.PHONE_ADDED, "en-GB", "3456")
    assert MOBILE[3:] not in notice and fits_one_gsm7_segment(notice)
    assert len(phones.messages(to=MOBILE)) == 1  # the new phone: its code, never the notice


def test_a_welsh_speaker_is_told_in_welsh(live, phones, alice):
    rt = live.app.extensions["mfa"]
    with rt.sessions() as s, use_case(s):
        s.get(User, alice.id).language = "cy-GB"
    [other_id] = add_phone(lambda use: run_in(live.app, use), alice, OTHER, "alternate", types=("sms",))
    with rt.sessions() as s, use_case(s):
        security_info.remove_method(s, rt.services, s.get(User, alice.id), other_id, None)
    assert change_notices.wait_for_sends()
    phones.wait_idle()
    [notice] = [m.body for m in phones.messages(to=ALICE)]
    assert notice == notice_message("Secure Sign-in", change_notices.PHONE_REMOVED, "cy-GB", OTHER[-4:])
    assert phones.messages(to=OTHER) == []
