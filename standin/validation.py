"""Checks on REST parameters, so the app's provider cannot send what Twilio would refuse.

The accepted names are exactly those Twilio's OpenAPI description (twilio_api_v2010.json in
twilio-oai; docs/twilio/README.md) lists for each operation; Twilio itself ignores unknown names, the
stand-in rejects them so a misspelt parameter is caught in development, not in production.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from werkzeug.datastructures import MultiDict

from .errors import TwilioApiError

CREATE_CALL = frozenset({
    "To", "From", "Method", "FallbackUrl", "FallbackMethod", "StatusCallback",
    "StatusCallbackEvent", "StatusCallbackMethod", "SendDigits", "Timeout", "Record",
    "RecordingChannels", "RecordingStatusCallback", "RecordingStatusCallbackMethod",
    "SipAuthUsername", "SipAuthPassword", "MachineDetection", "MachineDetectionTimeout",
    "RecordingStatusCallbackEvent", "Trim", "CallerId", "MachineDetectionSpeechThreshold",
    "MachineDetectionSpeechEndThreshold", "MachineDetectionSilenceTimeout", "AsyncAmd",
    "AsyncAmdStatusCallback", "AsyncAmdStatusCallbackMethod", "Byoc", "CallReason",
    "CallToken", "RecordingTrack", "TimeLimit", "ClientNotificationUrl", "Url", "Twiml",
    "ApplicationSid",
})
UPDATE_CALL = frozenset({
    "Url", "Method", "Status", "FallbackUrl", "FallbackMethod", "StatusCallback",
    "StatusCallbackMethod", "Twiml", "TimeLimit",
})
CREATE_MESSAGE = frozenset({
    "To", "StatusCallback", "ApplicationSid", "MaxPrice", "ProvideFeedback", "Attempt",
    "ValidityPeriod", "ForceDelivery", "ContentRetention", "AddressRetention", "SmartEncoded",
    "PersistentAction", "TrafficType", "ShortenUrls", "ScheduleType", "SendAt", "SendAsMms",
    "ContentVariables", "RiskCheck", "From", "FallbackFrom", "MessagingServiceSid", "Body",
    "MediaUrl", "ContentSid",
})
LIST_PARAMS = frozenset({
    "StatusCallbackEvent", "RecordingStatusCallbackEvent", "PersistentAction", "MediaUrl",
})
INTEGER_PARAMS = frozenset({
    "Timeout", "TimeLimit", "MachineDetectionTimeout", "MachineDetectionSpeechThreshold",
    "MachineDetectionSpeechEndThreshold", "MachineDetectionSilenceTimeout", "Attempt",
    "ValidityPeriod",
})
URL_PARAMS = ("Url", "FallbackUrl", "StatusCallback")
METHOD_PARAMS = ("Method", "FallbackMethod", "StatusCallbackMethod", "AsyncAmdStatusCallbackMethod")
CALL_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
SEND_DIGITS = re.compile(r"^[0-9A-D#*wW]{1,32}$")
MAX_BODY = 1600


def parse_form(form: MultiDict, accepted: frozenset[str]) -> dict:
    """Flatten the form (lists only where Twilio takes repeated fields), refusing strangers."""
    unknown = sorted(set(form.keys()) - accepted)
    if unknown:
        raise TwilioApiError(20001, detail=f"{', '.join(unknown)} (not a parameter of this "
                             "Twilio operation; see twilio_api_v2010.json)")
    params: dict[str, Any] = {name: (form.getlist(name) if name in LIST_PARAMS else form.get(name))
              for name in form.keys()}
    for name in INTEGER_PARAMS & params.keys():
        if not re.fullmatch(r"-?\d+", params[name] or ""):
            raise TwilioApiError(20001, detail=f"{name}={params[name]!r} is not an integer")
    for name in METHOD_PARAMS:
        if name in params:
            params[name] = params[name].upper()
            if params[name] not in ("GET", "POST"):
                raise TwilioApiError(20001, detail=f"{name} must be GET or POST")
    for name in URL_PARAMS:
        if params.get(name) and not _is_http_url(params[name]):
            code = 21205 if name == "Url" else 21609
            raise TwilioApiError(code, detail=params[name])
    return params


def _is_http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _check_to(to: str | None, missing_code: int) -> None:
    if not to:
        raise TwilioApiError(missing_code)
    if not E164.match(to):
        raise TwilioApiError(21211, to=to)


def check_create_call(params: dict) -> None:
    _check_to(params.get("To"), 21201)
    if not params.get("From"):
        raise TwilioApiError(21213)
    if params.get("ApplicationSid") and not params.get("Url"):
        raise TwilioApiError(21218)
    if not params.get("Url") and not params.get("Twiml"):
        raise TwilioApiError(21205)
    if "SendDigits" in params and not SEND_DIGITS.match(params["SendDigits"]):
        raise TwilioApiError(21206)
    events = {e for value in params.get("StatusCallbackEvent") or [] for e in value.split()}
    if events - CALL_EVENTS:
        raise TwilioApiError(21626, detail=", ".join(sorted(events - CALL_EVENTS)))
    detection = params.get("MachineDetection")
    if detection and detection not in ("Enable", "DetectMessageEnd"):
        raise TwilioApiError(20001, detail="MachineDetection must be Enable or DetectMessageEnd")
    if (params.get("AsyncAmd") or "false").lower() not in ("true", "false"):
        raise TwilioApiError(20001, detail="AsyncAmd must be true or false")
    amd_callback = params.get("AsyncAmdStatusCallback")
    if amd_callback and not _is_http_url(amd_callback) and (
            urlparse(amd_callback).scheme or not params.get("Url")):
        # Twilio takes an absolute URL, or one relative to Url (resolved as a browser would).
        raise TwilioApiError(21609, detail=amd_callback)
    timeout = params.get("Timeout")
    if timeout is not None and not 1 <= int(timeout) <= 600:
        raise TwilioApiError(20001, detail="Timeout must be between 1 and 600 seconds")


def check_update_call(params: dict) -> None:
    if params.get("Status") not in (None, "canceled", "completed"):
        raise TwilioApiError(20001, detail="Status must be canceled or completed")


def check_create_message(params: dict) -> None:
    _check_to(params.get("To"), 21604)
    if not params.get("From") and not params.get("MessagingServiceSid"):
        raise TwilioApiError(21603)
    if not params.get("Body") and not params.get("MediaUrl") and not params.get("ContentSid"):
        raise TwilioApiError(21602)
    if len(params.get("Body") or "") > MAX_BODY:
        raise TwilioApiError(21617)
