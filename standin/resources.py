"""Call and Message resources as Twilio's 2010-04-01 API renders them (the fields of
api.v2010.account.call / api.v2010.account.message in twilio_api_v2010.json)."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime

from .calls import API_VERSION
from .records import SimCall, SimMessage

# GSM 03.38 basic set and extension table: anything else makes a message UCS-2.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "^{}\\[~]|€\f"


def rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment else None


def formatted(number: str) -> str:
    """Twilio shows North American numbers as (415) 867-5309 and others unchanged."""
    if number.startswith("+1") and len(number) == 12:
        return f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    return number


def segments(body: str) -> int:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in body):
        length = sum(2 if ch in GSM7_EXTENDED else 1 for ch in body)
        single, multi = 160, 153
    else:
        length = sum(2 if ord(ch) > 0xFFFF else 1 for ch in body)  # UTF-16 code units
        single, multi = 70, 67
    if length <= single:
        return 1
    return -(-length // multi)


def call_resource(call: SimCall) -> dict:
    base = f"/{API_VERSION}/Accounts/{call.account_sid}/Calls/{call.sid}"
    return {
        "account_sid": call.account_sid,
        "answered_by": call.answered_by,
        "api_version": API_VERSION,
        "caller_name": None,
        "date_created": rfc2822(call.created_at),
        "date_updated": rfc2822(call.updated_at or call.created_at),
        "direction": "outbound-api",
        "duration": None if call.duration is None else str(call.duration),
        "end_time": rfc2822(call.ended_at),
        "forwarded_from": None,
        "from": call.from_,
        "from_formatted": formatted(call.from_),
        "group_sid": None,
        "parent_call_sid": None,
        "phone_number_sid": None,
        "price": None,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": call.sid,
        "start_time": rfc2822(call.started_at),
        "status": call.status,
        "subresource_uris": {
            name: f"{base}/{file}.json" for name, file in (
                ("notifications", "Notifications"), ("recordings", "Recordings"),
                ("payments", "Payments"), ("events", "Events"), ("siprec", "Siprec"),
                ("streams", "Streams"), ("transcriptions", "Transcriptions"),
                ("user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"),
                ("user_defined_messages", "UserDefinedMessages"))
        },
        "to": call.to,
        "to_formatted": formatted(call.to),
        "trunk_sid": None,
        "uri": f"{base}.json",
    }


def message_resource(message: SimMessage) -> dict:
    base = f"/{API_VERSION}/Accounts/{message.account_sid}/Messages/{message.sid}"
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.created_at),
        "date_sent": rfc2822(message.sent_at),
        "date_updated": rfc2822(message.updated_at or message.created_at),
        "direction": "outbound-api",
        "error_code": message.error_code,
        "error_message": message.error_message,
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": str(len(message.params.get("MediaUrl") or [])),
        "num_segments": str(segments(message.body)),
        "price": None,
        "price_unit": None,
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {"media": f"{base}/Media.json"},
        "to": message.to,
        "uri": f"{base}.json",
    }
