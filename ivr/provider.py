"""The only code that talks to Twilio: calls and texts through the official SDK.

Locally TWILIO_API_BASE_URL points the same SDK at the stand-in (ivr/standin),
so development, tests and production share this one path.
"""
from __future__ import annotations

import logging
import time

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr import sms_texts
from mfa import metrics
from mfa.errors import ProviderUnavailable
from mfa.phones import mask
from mfa.telephony import TelephonyRejected

log = logging.getLogger("mfa.telephony")

RING_SECONDS = 25  # short enough that voicemail rarely answers first
CALL_TIME_LIMIT = 90


class TwilioProvider:
    def __init__(self, settings, *, attempts: int = 3, timeout: float = 3.0, budget: float = 6.0,
                 backoff: tuple[float, ...] = (0.25, 0.75), sleep=time.sleep):
        self.client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token,
            http_client=TwilioHttpClient(timeout=timeout),
        )
        self.client.api.base_url = settings.twilio_api_base_url
        self.from_number = settings.twilio_from_number
        self.messaging_service_sid = settings.twilio_messaging_service_sid
        self.base_url = settings.public_base_url
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
            to=to, body=body, status_callback=f"{self.base_url}/twilio/sms/status",
            validity_period=sms_texts.CODE_TTL_MINUTES * 60, **sender,
        ))
        return message.sid

    def place_verification_call(self, to: str, challenge_id: str) -> str:
        # Optional: a key press is what approves, so voicemail cannot approve without it.
        options = {"machine_detection": "Enable"} if self.machine_detection else {}
        call = self._send("call", to, lambda: self.client.calls.create(
            to=to, from_=self.from_number,
            url=f"{self.base_url}/twilio/voice/answer?challenge={challenge_id}",
            status_callback=f"{self.base_url}/twilio/voice/status?challenge={challenge_id}",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            timeout=RING_SECONDS, time_limit=CALL_TIME_LIMIT, **options,
        ))
        return call.sid

    def end_call(self, call_sid: str) -> None:
        self._send("end-call", None, lambda: self.client.calls(call_sid).update(status="completed"))

    # --- retries ---

    def _send(self, what: str, to: str | None, request):
        """Retry what a retry can fix (5xx, 429, no connection); refuse the rest at once.

        A read time-out is not retried: Twilio may have acted on it, and a
        second call or text to a person is worse than asking them to retry.
        """
        shown = mask(to) if to else "-"
        started = time.monotonic()
        for attempt in range(1, self.attempts + 1):
            try:
                return request()
            except TwilioRestException as exc:
                metrics.count_twilio_error(exc.code or f"http_{exc.status}")
                if exc.status < 500 and exc.status != 429:
                    # Twilio's message quotes the full number: log the code only.
                    log.info("twilio refused %s to %s: error %s", what, shown, exc.code)
                    raise TelephonyRejected(exc.code, str(exc.msg)) from None
                reason = f"HTTP {exc.status} code {exc.code}"
            except requests.exceptions.ReadTimeout:
                metrics.count_twilio_error("timeout")
                log.warning("twilio timed out on %s to %s; not retried", what, shown)
                raise ProviderUnavailable() from None
            except requests.exceptions.RequestException as exc:
                metrics.count_twilio_error("connection")
                reason = type(exc).__name__
            log.warning("twilio %s to %s failed (%s), attempt %d of %d", what, shown, reason, attempt, self.attempts)
            pause = self.backoff[min(attempt - 1, len(self.backoff) - 1)]
            if attempt == self.attempts or time.monotonic() - started + pause > self.budget:
                break
            self.sleep(pause)
        raise ProviderUnavailable()
