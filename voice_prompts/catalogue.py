"""Every prompt the verification call speaks, by name and language, in one place.

The call flow asks for a prompt by name; it plays the recording when a fresh one exists
(see library.py) and otherwise speaks this text with the language's <Say> voice.
"""
from __future__ import annotations

# The one list of languages lives with the person's call language (re-exported for the prompt tools).
from models.user import DEFAULT_LANGUAGE as DEFAULT_LANGUAGE, LANGUAGES as LANGUAGES
DEFAULT_SERVICE = "Secure Sign-in"

# {service} is the operator's SERVICE_NAME; it is filled in with str.replace, not format(),
# so a service name containing braces cannot break the text.
_PROMPTS: dict[str, dict[str, str]] = {
    "greeting": {
        "en-GB": "Hello. This is the {service} verification call.",
        "cy-GB": "Helo. Dyma alwad ddilysu {service}.",
    },
    "press_hash": {
        "en-GB": "Press the hash key to finish your verification.",
        "cy-GB": "Pwyswch yr allwedd hash i orffen eich dilysu.",
    },
    "report_fraud": {
        "en-GB": "If you did not try to sign in, press zero and then the hash key to report it.",
        "cy-GB": "Os na wnaethoch chi geisio mewngofnodi, pwyswch sero ac yna'r allwedd hash i roi gwybod.",
    },
    "not_mine": {
        "en-GB": "If you do not know why you are getting this call, press nine.",
        "cy-GB": "Os nad ydych chi'n gwybod pam rydych chi'n cael yr alwad hon, pwyswch naw.",
    },
    "not_recognised": {
        "en-GB": "Sorry, that key was not recognised.",
        "cy-GB": "Mae'n ddrwg gennym, ni chafodd yr allwedd honno ei hadnabod.",
    },
    "no_input": {
        "en-GB": "Sorry, we did not hear a key press.",
        "cy-GB": "Mae'n ddrwg gennym, ni chlywsom unrhyw allwedd.",
    },
    "verified": {
        "en-GB": "Your sign-in has been verified. Goodbye.",
        "cy-GB": "Mae eich mewngofnodi wedi'i ddilysu. Hwyl fawr.",
    },
    "fraud_recorded": {
        "en-GB": "Thank you. This sign-in has been blocked and reported. Goodbye.",
        "cy-GB": "Diolch. Mae'r mewngofnodi hwn wedi'i rwystro a'i adrodd. Hwyl fawr.",
    },
    "do_not_call": {
        "en-GB": "Thank you. We will not call this number again. Goodbye.",
        "cy-GB": "Diolch. Ni fyddwn yn ffonio'r rhif hwn eto. Hwyl fawr.",
    },
    "goodbye": {
        "en-GB": "This verification has ended. Goodbye.",
        "cy-GB": "Mae'r dilysiad hwn wedi dod i ben. Hwyl fawr.",
    },
    "no_input_goodbye": {
        "en-GB": "We did not hear a key press. Goodbye.",
        "cy-GB": "Ni chlywsom unrhyw allwedd. Hwyl fawr.",
    },
    "wrong_key_goodbye": {
        "en-GB": "That key was not recognised. Goodbye.",
        "cy-GB": "Ni chafodd yr allwedd honno ei hadnabod. Hwyl fawr.",
    },
}

PROMPT_NAMES = tuple(_PROMPTS)

# Twilio <Say> voices used when no fresh recording exists (Amazon Polly, British voices).
_SAY_VOICES = {
    "en-GB": ("Polly.Amy", "en-GB"),
    "cy-GB": ("Polly.Gwyneth", "cy-GB"),
}

# espeak-ng voices used by the offline build (build.py); never needed when serving.
_ESPEAK_VOICES = {
    "en-GB": "en-gb",
    "cy-GB": "cy",
}


def language_or_default(language: str | None) -> str:
    """The catalogue language for `language`; anything unknown is spoken in en-GB.

    Matching ignores case and accepts a bare primary tag ("cy"), because language values
    come from user records and headers, and a caller must never get an error instead of a prompt.
    """
    wanted = (language or "").strip().lower()
    for known in LANGUAGES:
        if wanted in (known.lower(), known.split("-")[0].lower()):
            return known
    return DEFAULT_LANGUAGE


def text(name: str, language: str | None, service: str = DEFAULT_SERVICE) -> str:
    """The words of prompt `name` in `language`, with the service name filled in.

    An unknown name is a programming error (ValueError); an unknown language falls back to en-GB.
    """
    try:
        wording = _PROMPTS[name]
    except KeyError:
        raise ValueError(f"unknown prompt {name!r}; known prompts: {', '.join(PROMPT_NAMES)}") from None
    return wording[language_or_default(language)].replace("{service}", service)


def say_voice(language: str | None) -> tuple[str, str]:
    """(voice, language) attributes for a TwiML <Say> in `language`."""
    return _SAY_VOICES[language_or_default(language)]


def espeak_voice(language: str) -> str:
    """The espeak-ng voice that synthesises `language` for the offline build."""
    return _ESPEAK_VOICES[language_or_default(language)]
