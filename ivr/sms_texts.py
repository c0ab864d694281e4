"""The words of every text message, per language. Each must fit one GSM-7 segment."""
from __future__ import annotations

from mfa import change_notices
from mfa.method_types import Text

CODE_TTL_MINUTES = Text.code_lifetime_minutes()  # the challenge's own lifetime: one constant

CODE_MESSAGE = {
    "en-GB": "Your {service} code is {code}. It expires in {minutes} minutes. Never share it.",
    "cy-GB": "Eich cod {service} yw {code}. Daw i ben mewn {minutes} munud. Cadwch ef yn gyfrinachol.",
}

# GSM 03.38 basic character set (plus the escape-free line feed): texts outside it cost
# UCS-2 segments of 70 characters instead of 160.
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
SEGMENT = 160


def code_message(service: str, code: str, host: str, language: str) -> str:
    """The code text, ending with the origin-bound line browsers and phones autofill from."""
    template = CODE_MESSAGE.get(language, CODE_MESSAGE["en-GB"])
    text = template.format(service=service, code=code, minutes=CODE_TTL_MINUTES)
    return f"{text}\n\n@{host} #{code}"


def fits_one_gsm7_segment(body: str) -> bool:
    return len(body) <= SEGMENT and set(body) <= GSM7


# --- change notifications (mfa/change_notices.py): to the person's other phones ------------------
# {ending} is NOTICE_ENDING with the changed phone's last four digits, or nothing. The Welsh avoids
# "ffôn" (a circumflex would make the text UCS-2): a phone is "rhif" (a number) or "dyfais".
NOTICE_MESSAGE = {
    change_notices.PHONE_ADDED: {
        "en-GB": "{service}: a phone{ending} was added to your sign-in methods.",
        "cy-GB": "{service}: ychwanegwyd rhif{ending} at eich dulliau mewngofnodi.",
    },
    change_notices.PHONE_CHANGED: {
        "en-GB": "{service}: your sign-in phone was changed to a new number{ending}.",
        "cy-GB": "{service}: newidiwyd eich rhif mewngofnodi i rif newydd{ending}.",
    },
    change_notices.PHONE_REMOVED: {
        "en-GB": "{service}: a phone{ending} was removed from your sign-in methods.",
        "cy-GB": "{service}: tynnwyd rhif{ending} o'ch dulliau mewngofnodi.",
    },
    change_notices.APP_ADDED: {
        "en-GB": "{service}: an authenticator app was added to your sign-in methods.",
        "cy-GB": "{service}: mae ap dilysu wedi'i ychwanegu at eich dulliau mewngofnodi.",
    },
    change_notices.APP_REMOVED: {
        "en-GB": "{service}: an authenticator app was removed from your sign-in methods.",
        "cy-GB": "{service}: mae ap dilysu wedi'i dynnu o'ch dulliau mewngofnodi.",
    },
    change_notices.DEVICE_ADDED: {
        "en-GB": "{service}: a phone app was set up to approve your sign-ins.",
        "cy-GB": "{service}: mae ap ar ddyfais wedi'i osod i gymeradwyo eich mewngofnodi.",
    },
    change_notices.DEVICE_REMOVED: {
        "en-GB": "{service}: a phone app that approves your sign-ins was removed.",
        "cy-GB": "{service}: mae ap ar ddyfais sy'n cymeradwyo eich mewngofnodi wedi'i dynnu.",
    },
    change_notices.RECOVERY_CODES_REGENERATED: {
        "en-GB": "{service}: your recovery codes were replaced: the old ones no longer work.",
        "cy-GB": "{service}: mae gennych godau adfer newydd. Nid yw'r hen rai yn gweithio.",
    },
    change_notices.RECOVERY_CODE_USED: {
        "en-GB": "{service}: a recovery code was used to sign in to your account.",
        "cy-GB": "{service}: defnyddiwyd cod adfer i fewngofnodi i'ch cyfrif.",
    },
    change_notices.ACCESS_PASS_USED: {
        "en-GB": "{service}: a temporary access pass was used to sign in to your account.",
        "cy-GB": "{service}: defnyddiwyd tocyn mynediad dros dro i fewngofnodi i'ch cyfrif.",
    },
}
NOTICE_ENDING = {
    "en-GB": " ending {digits}",
    "cy-GB": " sy'n gorffen gyda {digits}",
}
NOTICE_WHAT_TO_DO = {
    "en-GB": " If this was not you, call your IT service desk now.",
    "cy-GB": " Os nad chi wnaeth hyn, ffoniwch eich desg gymorth TG nawr.",
}


def notice_message(service: str, change: str, language: str, last_digits: str | None = None) -> str:
    """What changed, and what to do if it was not the person. Never a number: at most its last digits."""
    language = language if language in NOTICE_WHAT_TO_DO else "en-GB"
    ending = NOTICE_ENDING[language].format(digits=last_digits) if last_digits else ""
    text = NOTICE_MESSAGE[change][language].format(service=service, ending=ending)
    return text + NOTICE_WHAT_TO_DO[language]
