"""The only code that talks to Twilio: calls and texts through the official SDK.

Locally TWILIO_API_BASE_URL points the same SDK at the stand-in (the top-level package standin/),
so development, tests and production share this one path.
"""
from __future__ import annotations

import logging
import time

from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.rest import Client

from ivr import sms_texts
from ivr.webhook_urls import WebhookUrls
from ivr.twilio_http import MaybeSent, NotJson, NotSent, StrictTwilioHttpClient
from mfa.errors import ProviderUnavailable
from mfa.phones import mask
from mfa.telephony import DeliveryUnknown, Refusal, TelephonyRejected
from ops import counters

log = logging.getLogger("mfa.telephony")

RING_SECONDS = 25  # short enough that voicemail rarely answers first
CALL_TIME_LIMIT = 90
# Only the status callbacks acted on: "ringing" for the call page, "completed" for the ending
# (busy, no answer, failed, hung up). "answered" comes with the answer webhook anyway.
STATUS_EVENTS = ["ringing", "completed"]


class TwilioProvider:
    def __init__(self, settings, *, attempts: int = 3, timeout: float = 3.0, budget: float = 6.0,
                 backoff: tuple[float, ...] = (0.25, 0.75), sleep=time.sleep):
        self.client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token,
            http_client=StrictTwilioHttpClient(timeout=timeout),
        )
        self.client.api.base_url = settings.twilio_api_base_url
        self.from_number = settings.twilio_from_number
        self.messaging_service_sid = settings.twilio_messaging_service_sid
        self.urls = WebhookUrls(settings.public_base_url)
        self.host = settings.public_host
        self.service_name = settings.service_name
        self.machine_detection = settings.voice_machine_detection
        self.attempts = attempts
        self.budget = budget  # seconds a request may spend on Twilio, retries included
        self.backoff = backoff
        self.sleep = sleep

    # --- what the domain asks for (mfa.telephony.Telephony) ---

    def send_code_sms(self, to: str, code: str, language: str) -> str:
        body = sms_texts.code_message(self.service_name, code, self.host, language)
        sender = ({"messaging_service_sid": self.messaging_service_sid}
                  if self.messaging_service_sid else {"from_": self.from_number})
        message = self._send("sms", to, lambda: self.client.messages.create(
            to=to, body=body, status_callback=self.urls.sms_status(),
            validity_period=sms_texts.CODE_TTL_MINUTES * 60, **sender,
        ))
        return message.sid

    def send_notice_sms(self, to: str, change: str, language: str, last_digits: str | None) -> str:
        # No status callback: a notice is no challenge, and nothing waits on its delivery.
        body = sms_texts.notice_message(self.service_name, change, language, last_digits)
        sender = ({"messaging_service_sid": self.messaging_service_sid}
                  if self.messaging_service_sid else {"from_": self.from_number})
        message = self._send("sms", to, lambda: self.client.messages.create(to=to, body=body, **sender))
        return message.sid

    def place_verification_call(self, to: str, challenge_id: str) -> str:
        call = self._send("call", to, lambda: self.client.calls.create(
            to=to, from_=self.from_number,
            url=self.urls.voice_answer(challenge_id),
            status_callback=self.urls.voice_status(challenge_id),
            status_callback_event=STATUS_EVENTS,
            timeout=RING_SECONDS, time_limit=CALL_TIME_LIMIT, **self._machine_detection(challenge_id),
        ))
        return call.sid

    def _machine_detection(self, challenge_id: str) -> dict[str, str]:
        """Optional, and never on the caller's path: a key press is what approves anyway.

        DetectMessageEnd waits for a voicemail's beep, so a person with a long greeting
        ("machine_start") still hears the prompt; async, so the prompt starts at once and
        the result arrives at its own webhook (mfa.calls.machine_detected).
        """
        if not self.machine_detection:
            return {}
        return {"machine_detection": "DetectMessageEnd", "async_amd": "true",
                "async_amd_status_callback": self.urls.voice_amd(challenge_id),
                "async_amd_status_callback_method": "POST"}

    def end_call(self, call_sid: str) -> None:
        self._send("end-call", None, lambda: self.client.calls(call_sid).update(status="completed"))

    # --- retries ---

    def _send(self, what: str, to: str | None, request):
        """One request (mfa_twilio_requests_total), however many attempts it takes (mfa_twilio_attempts_total)."""
        kind = what.replace("-", "_")  # call, sms, end_call: the metrics' label
        try:
            answer = self._attempts(what, kind, to, request)
        except Exception:
            counters.count_twilio_request(kind, ok=False)
            raise
        counters.count_twilio_request(kind, ok=True)
        return answer

    def _attempts(self, what: str, kind: str, to: str | None, request):
        """Retry only what Twilio cannot have received: 429 and connections never made.

        A create (a call or a text) that may have reached Twilio (a 5xx, a read time-out, a
        dropped or broken answer) raises DeliveryUnknown and is never retried: a second call or
        text to a person is worse than asking them to try again.
        """
        shown = mask(to) if to else "-"
        started = time.monotonic()
        for attempt in range(1, self.attempts + 1):
            try:
                return _counted_attempt(kind, request)
            except NotSent as exc:
                counters.count_twilio_error("connection")
                reason = f"no connection ({exc})"
            except (TwilioRestException, TwilioServiceException) as exc:  # the second: RFC 9457 bodies
                counters.count_twilio_error(exc.code or f"http_{exc.status}")
                if exc.status != 429:
                    return self._refused(what, shown, exc)
                reason = "HTTP 429, not acted on"
            except MaybeSent as exc:
                counters.count_twilio_error("timeout" if exc.timeout else "connection")
                log.warning("twilio %s to %s: %s after sending; not retried", what, shown, exc)
                raise self._maybe_sent(what) from None
            except NotJson as exc:
                counters.count_twilio_error("not_json")
                raise self._not_json(what, shown, exc.status) from None
            log.warning("twilio %s to %s failed (%s), attempt %d of %d", what, shown, reason, attempt, self.attempts)
            pause = self.backoff[min(attempt - 1, len(self.backoff) - 1)]
            if attempt == self.attempts or time.monotonic() - started + pause > self.budget:
                break
            self.sleep(pause)
        raise ProviderUnavailable()

    @staticmethod
    def _maybe_sent(what: str) -> ProviderUnavailable:
        # Ending a call again later is harmless; only a create can reach a person twice.
        return ProviderUnavailable() if what == "end-call" else DeliveryUnknown()

    def _refused(self, what: str, shown: str, exc):
        setting = operator_setting(what, exc.status, exc.code)
        if setting:
            counters.count_twilio_account_error(exc.code or f"http_{exc.status}")
            # Never the number here: this line is for the operator, and it is about the account.
            log.error("twilio refused %s: HTTP %s, error %s; check %s", what, exc.status, exc.code, setting)
            raise ProviderUnavailable()
        if what == "end-call" and exc.status == 404:
            log.info("call to end was already gone (error %s)", exc.code)
            return None
        if exc.status >= 500:
            log.warning("twilio answered HTTP %s (error %s) to %s to %s; not retried",
                        exc.status, exc.code, what, shown)
            raise self._maybe_sent(what)
        # Twilio's message quotes the full number: log the code only.
        log.info("twilio refused %s to %s: error %s", what, shown, exc.code)
        reason = REFUSALS.get(exc.code, Refusal.PROVIDER_REJECTED)
        raise TelephonyRejected(reason, str(getattr(exc, "msg", "") or getattr(exc, "title", "")))

    def _not_json(self, what: str, shown: str, status: int) -> ProviderUnavailable:
        if status >= 500:  # an outage page from something in front of Twilio
            log.warning("twilio answered HTTP %s that is not JSON to %s to %s; not retried", status, what, shown)
        else:
            counters.count_twilio_account_error("not_json")
            log.error("twilio answered %s with HTTP %s that is not JSON; check TWILIO_API_BASE_URL", what, status)
        # A 2xx or 5xx to a create may still have placed the call or sent the text.
        return self._maybe_sent(what) if (200 <= status < 300 or status >= 500) else ProviderUnavailable()


def _counted_attempt(kind: str, request):
    """One HTTP attempt, counted by how it went (an exception is an error: a refusal, a time-out, no answer)."""
    try:
        answer = request()
    except Exception:
        counters.count_twilio_attempt(kind, ok=False)
        raise
    counters.count_twilio_attempt(kind, ok=True)
    return answer


# Refusals about the person's number that a retry will not change, as the domain's reasons.
# (Twilio error dictionary; anything else the provider refuses is Refusal.PROVIDER_REJECTED.)
REFUSALS: dict[int | None, Refusal] = {
    21211: Refusal.INVALID_NUMBER,  # invalid 'To' number
    21217: Refusal.INVALID_NUMBER,  # phone number does not appear to be valid
    21614: Refusal.SMS_NEEDS_MOBILE,  # 'To' is not a mobile number
    21408: Refusal.REGION_NOT_ENABLED,  # permission to send to this region not enabled
    21215: Refusal.REGION_NOT_ENABLED,  # geo permission for calls to this number not enabled
    21610: Refusal.OPTED_OUT,  # the recipient replied STOP
    21612: Refusal.UNREACHABLE_NUMBER,  # 'To' cannot be reached from this 'From'
    21214: Refusal.UNREACHABLE_NUMBER,  # 'To' cannot be reached
    21216: Refusal.UNREACHABLE_NUMBER,  # account not allowed to call this number
}

# Refusals about the account, its credentials or its sender, never about the person's number:
# the setting an operator should check. (Twilio error dictionary; docs/twilio/NOTES.md §2.4.)
ACCOUNT_ERRORS = {
    20003: "TWILIO_AUTH_TOKEN (with TWILIO_ACCOUNT_SID)",  # authentication failed: token rotated or wrong
    20005: "TWILIO_ACCOUNT_SID (the account is suspended or closed)",  # account not active
    10001: "TWILIO_ACCOUNT_SID (the account is not active)",
    20008: "TWILIO_AUTH_TOKEN (test credentials cannot do this)",
    20403: "TWILIO_ACCOUNT_SID (the account may not use this resource)",
    21210: "TWILIO_FROM_NUMBER (not a verified caller ID of the account)",
    21212: "TWILIO_FROM_NUMBER (not a valid sender)",
    21606: "TWILIO_FROM_NUMBER (not an SMS-capable number of the account)",
    21659: "TWILIO_FROM_NUMBER (not a Twilio number)",
    21660: "TWILIO_FROM_NUMBER (belongs to another account)",
}

# At 0 from the start, so an alert's increase() sees the first one (docs/monitoring.md).
counters.declare_account_error_codes([*ACCOUNT_ERRORS, 20404, "http_401", "http_403", "http_404", "not_json"])


def operator_setting(what: str, status: int, code: int | None) -> str | None:
    """The setting to check when Twilio's refusal is the operator's to fix, else None."""
    if code in ACCOUNT_ERRORS:
        return ACCOUNT_ERRORS[code]
    if status == 401:
        return "TWILIO_AUTH_TOKEN (with TWILIO_ACCOUNT_SID)"
    if status == 403:
        return "TWILIO_ACCOUNT_SID (the account may not use this resource)"
    if status == 404 and what != "end-call":
        # Calls.json and Messages.json always exist: only the account in the path can be missing.
        return "TWILIO_ACCOUNT_SID (or TWILIO_API_BASE_URL)"
    return None
