"""Twilio-shaped REST errors: codes, wording, and the documented magic test numbers.

Twilio answers a failed REST request with JSON such as
{"code": 21211, "message": "...", "more_info": "https://www.twilio.com/docs/errors/21211",
 "status": 400}; the twilio SDK turns that into TwilioRestException(.status, .code, .msg).
"""

from __future__ import annotations

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"

# Message templates; {to}/{from_} are filled in where Twilio names the number.
MESSAGES = {
    20001: "Unknown or invalid parameter: {detail}",
    20003: "Authentication Error - invalid username",
    20404: "The requested resource {detail} was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21201: "No 'To' number is specified",
    21205: "Url parameter is required.",
    21206: "SendDigits must be up to 32 of 0-9, A-D, #, *, w and W",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, "
    "or alphanumeric sender ID.",
    21213: "No 'From' number is specified",
    21214: "'To' phone number cannot be reached",
    21215: "Account not authorized to call {to}. Perhaps you need to enable some "
    "international permissions: https://www.twilio.com/console/voice/calls/geo-permissions",
    21216: "Account not allowed to call {to}",
    21217: "Phone number does not appear to be valid",
    21218: "Invalid ApplicationSid (applications are not simulated by the stand-in)",
    21408: "Permission to send an SMS has not been enabled for the region indicated by "
    "the 'To' number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The From phone number {from_} is not a valid, SMS-capable inbound phone number "
    "or short code for your account.",
    21609: "Invalid StatusCallback url: {detail}",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
    "number: {from_} via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21626: "Invalid 'StatusCallbackEvent': {detail}",
}

# Twilio's documented magic numbers for test credentials (NOTES.md section 4).
MAGIC_SMS_TO = {
    "+15005550001": 21211, "+15005550002": 21612, "+15005550003": 21408,
    "+15005550004": 21610, "+15005550009": 21614,
}
MAGIC_SMS_FROM = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611}
MAGIC_CALL_TO = {
    "+15005550001": 21217, "+15005550002": 21214, "+15005550003": 21215,
    "+15005550004": 21216,
}
MAGIC_CALL_FROM = {"+15005550001": 21212}

FORCED_FAILURE_CODES = {429: 20429, 500: 20500, 503: 20503}


class TwilioApiError(Exception):
    """A REST request Twilio would refuse; rendered by the REST blueprint as Twilio JSON."""

    def __init__(self, code: int, *, status: int = 400, to: str = "", from_: str = "",
                 detail: str = ""):
        self.code = code
        self.status = status
        template = MESSAGES.get(code, "Twilio error {code}")
        self.message = template.format(to=to, from_=from_, detail=detail, code=code)
        super().__init__(f"{code}: {self.message}")

    def body(self) -> dict:
        return error_body(self.code, self.message, self.status)


def error_body(code: int, message: str, status: int) -> dict:
    return {"code": code, "message": message, "more_info": MORE_INFO.format(code=code),
            "status": status}
