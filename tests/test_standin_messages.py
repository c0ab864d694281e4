"""Texts through the stand-in: the Message resource and its delivery status callbacks."""

import re

import pytest
from twilio.base.exceptions import TwilioRestException

from tests.standin_helpers import (  # noqa: F401  (fixtures)
    ACCOUNT_SID, CALLEE, CALLER, customer, network, standin, twilio,
)

SERVICE = "MG" + "ab" * 16
CODE_TEXT = "Your sign-in code is 123456.\n\n@mfa.example.org #123456"


def send(twilio, customer, **options):
    options.setdefault("from_", CALLER)
    return twilio.messages.create(to=CALLEE, body=CODE_TEXT,
                                  status_callback=customer.url("/sms-status"), **options)


def statuses(customer):
    return [r.form["MessageStatus"] for r in customer.received("/sms-status")]


def test_sending_a_text_returns_a_queued_message_resource(twilio, customer):
    message = send(twilio, customer)
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert (message.status, message.to, message.body) == ("queued", CALLEE, CODE_TEXT)
    assert message.num_segments == "1" and message.direction == "outbound-api"
    assert message.account_sid == ACCOUNT_SID


def test_a_text_is_sent_then_delivered_with_signed_callbacks(twilio, customer, network):
    sid = send(twilio, customer).sid
    network.wait_idle()
    assert statuses(customer) == ["sent", "delivered"]
    for request in customer.received("/sms-status"):
        assert request.signature_valid
        assert request.form["MessageSid"] == request.form["SmsSid"] == sid
        assert request.form["SmsStatus"] == request.form["MessageStatus"]
        assert (request.form["From"], request.form["To"]) == (CALLER, CALLEE)
        assert request.form["AccountSid"] == ACCOUNT_SID and "ErrorCode" not in request.form
    assert twilio.messages(sid).fetch().status == "delivered"


def test_an_undelivered_text_reports_its_error_code(twilio, customer, network):
    network.set_sms_outcome(CALLEE, "undelivered", 30005)
    sid = send(twilio, customer).sid
    network.wait_idle()
    assert statuses(customer) == ["sent", "undelivered"]
    assert customer.received("/sms-status")[-1].form["ErrorCode"] == "30005"
    fetched = twilio.messages(sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30005)


def test_a_failed_text_is_never_sent_and_defaults_to_error_30008(twilio, customer, network):
    network.set_sms_outcome(CALLEE, "failed")
    send(twilio, customer)
    network.wait_idle()
    assert statuses(customer) == ["failed"]
    assert customer.received("/sms-status")[0].form["ErrorCode"] == "30008"


def test_a_messaging_service_text_is_accepted_and_gets_a_sender(twilio, customer, network):
    message = send(twilio, customer, from_=None, messaging_service_sid=SERVICE)
    assert message.status == "accepted" and message.messaging_service_sid == SERVICE
    network.wait_idle()
    (latest,) = network.messages(CALLEE)
    assert latest.from_ and latest.status == "delivered"
    assert customer.received("/sms-status")[0].form["MessagingServiceSid"] == SERVICE


def test_messages_are_listed_newest_last_and_by_number(twilio, customer, network):
    first = send(twilio, customer).sid
    other = twilio.messages.create(to="+447700900999", from_=CALLER, body="other").sid
    second = send(twilio, customer).sid
    assert [m.sid for m in network.messages()] == [first, other, second]
    assert [m.sid for m in network.messages(to=CALLEE)] == [first, second]
    assert network.messages(CALLEE)[0].body == CODE_TEXT


@pytest.mark.parametrize("options, code", [
    ({"from_": CALLER}, 21602),
    ({"body": "hi"}, 21603),
    ({"from_": CALLER, "body": "x" * 1601}, 21617),
])
def test_incomplete_texts_are_refused_like_twilio_does(twilio, options, code):
    with pytest.raises(TwilioRestException) as refused:
        twilio.messages.create(to=CALLEE, **options)
    assert (refused.value.status, refused.value.code) == (400, code)


def test_long_and_unicode_texts_count_segments_like_twilio(twilio):
    assert twilio.messages.create(to=CALLEE, from_=CALLER, body="a" * 161).num_segments == "2"
    assert twilio.messages.create(to=CALLEE, from_=CALLER, body="é" * 160).num_segments == "1"
    assert twilio.messages.create(to=CALLEE, from_=CALLER, body="✓" * 71).num_segments == "2"
