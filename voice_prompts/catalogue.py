"""Every prompt the verification call speaks, by name and language, in one place.

The call flow asks for a prompt by name; it plays a fresh recording when VOICE_PROMPTS allows
(see library.py, Playback) and otherwise speaks this text with the language's <Say> voice.
Welsh wording follows the review in docs/welsh-wording.md (a keypad key is *bysell*; *rhoi gwybod am*).
"""
from __future__ import annotations

# The one list of languages lives with the person's call language (re-exported for the prompt tools).
from models.user import DEFAULT_LANGUAGE as DEFAULT_LANGUAGE, LANGUAGES as LANGUAGES
DEFAULT_SERVICE = "Secure Sign-in"

# {service} is the operator's SERVICE_NAME (SERVICE_NAME_CY in Welsh when set); it is filled in
# with str.replace, not format(), so a service name containing braces cannot break the text.
_PROMPTS: dict[str, dict[str, str]] = {
    # The first prompt (ivr.call_flow.FIRST_PROMPT): greeting, then press_hash or enter_number,
    # report_fraud, not_mine. "Press hash" must be heard within 4 s and the whole within 10 s
    # (voice_prompts/timing.py; tests/test_voice_prompts.py): keep these short.
    "greeting": {
        "en-GB": "Hello from {service}.",
        "cy-GB": "Helo, dyma {service}.",
    },
    "press_hash": {
        "en-GB": "Press hash to finish signing in.",
        "cy-GB": "Pwyswch hash i orffen.",
    },
    # A registration call's (ivr.call_flow.SETTING_UP): it sets a phone up, nobody is signing in.
    "press_hash_setup": {
        "en-GB": "Press hash to set up this phone.",
        "cy-GB": "Pwyswch hash i osod y ffôn hwn.",
    },
    "enter_number": {
        "en-GB": "Enter the number on your screen.",
        "cy-GB": "Rhowch y rhif ar eich sgrin.",
    },
    "report_fraud": {
        "en-GB": "If you did not try to sign in, press zero, then hash.",
        "cy-GB": "Os nad chi sy'n mewngofnodi, pwyswch sero, yna hash.",
    },
    # The stranger key: for someone who is not the account's owner at all. An owner who did not
    # expect the call is the fraud case above, so this does not say "not expecting this call".
    "not_mine": {
        "en-GB": "Wrong number? Press nine.",
        "cy-GB": "Rhif anghywir? Pwyswch naw.",
    },
    "confirm_fraud": {
        "en-GB": "To report that you did not try to sign in, press hash.",
        "cy-GB": "I roi gwybod na wnaethoch chi geisio mewngofnodi, pwyswch hash.",
    },
    "not_recognised": {
        "en-GB": "Sorry, that is not a valid choice.",
        "cy-GB": "Mae'n ddrwg gennym, nid yw hwnnw'n ddewis dilys.",
    },
    "no_input": {
        "en-GB": "Sorry, you did not press a key.",
        "cy-GB": "Mae'n ddrwg gennym, ni wnaethoch chi bwyso unrhyw fysell.",
    },
    "number_mismatch": {
        "en-GB": "That is not the number on your screen.",
        "cy-GB": "Nid dyna'r rhif ar eich sgrin.",
    },
    "verified": {
        "en-GB": "Your sign-in is verified. Goodbye.",
        "cy-GB": "Mae eich mewngofnodi wedi'i ddilysu. Hwyl fawr.",
    },
    "setup_verified": {
        "en-GB": "Thank you. This phone is set up. Goodbye.",
        "cy-GB": "Diolch. Mae'r ffôn hwn wedi'i osod. Hwyl fawr.",
    },
    "fraud_recorded": {
        "en-GB": "Thank you. We have blocked this sign-in and reported it. Goodbye.",
        "cy-GB": "Diolch. Rydym wedi rhwystro'r mewngofnodi hwn a rhoi gwybod amdano. Hwyl fawr.",
    },
    "do_not_call": {
        "en-GB": "Thank you. We will not call this number again. Goodbye.",
        "cy-GB": "Diolch. Ni fyddwn yn ffonio'r rhif hwn eto. Hwyl fawr.",
    },
    "goodbye": {
        "en-GB": "This call has ended. Goodbye.",
        "cy-GB": "Mae'r alwad hon wedi dod i ben. Hwyl fawr.",
    },
    "no_input_goodbye": {
        "en-GB": "You did not press a key. Goodbye.",
        "cy-GB": "Ni wnaethoch chi bwyso unrhyw fysell. Hwyl fawr.",
    },
    "wrong_key_goodbye": {
        "en-GB": "That is not a valid choice. Goodbye.",
        "cy-GB": "Nid yw hwnnw'n ddewis dilys. Hwyl fawr.",
    },
    "mismatch_goodbye": {
        "en-GB": "That number did not match, so this sign-in has been stopped. Goodbye.",
        "cy-GB": "Nid oedd y rhif yn cyfateb, felly rydym wedi atal y mewngofnodi hwn. Hwyl fawr.",
    },
}

PROMPT_NAMES = tuple(_PROMPTS)

# Twilio <Say> voices (Amazon Polly): the neural voice where Twilio offers one for the language.
# Twilio names a Polly neural voice "Polly.<Name>-Neural" (Amy: en-GB, neural and standard);
# Gwyneth, the only Welsh voice, is standard only. Sources: Twilio's voice list,
# https://www.twilio.com/docs/voice/twiml/say/text-speech, and Amazon's
# https://docs.aws.amazon.com/polly/latest/dg/available-voices.html (see docs/twilio/NOTES.md §2).
_SAY_VOICES = {
    "en-GB": ("Polly.Amy-Neural", "en-GB"),
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


def service_names(service: str = DEFAULT_SERVICE, welsh_service: str | None = None) -> dict[str, str]:
    """The service name each language speaks: SERVICE_NAME, or SERVICE_NAME_CY in Welsh when set."""
    return {language: (welsh_service or service) if language == "cy-GB" else service for language in LANGUAGES}


def say_voice(language: str | None) -> tuple[str, str]:
    """(voice, language) attributes for a TwiML <Say> in `language`."""
    return _SAY_VOICES[language_or_default(language)]


def espeak_voice(language: str) -> str:
    """The espeak-ng voice that synthesises `language` for the offline build."""
    return _ESPEAK_VOICES[language_or_default(language)]
