"""What the keys a caller pressed mean: by the question the call asked and how it is approved.

The first question (MENU) of a `hash` call takes one key and no finish key, so each key posts
the moment it is pressed: `#` approves with no inter-digit wait, and `0` asks a second,
one-key question (CONFIRM_FRAUD: "to report it, press hash") instead of waiting for a `#` that
may come seconds later. A `number` call's first question takes two keys (the digits on the
sign-in screen; they never start with 0 or 9, so those keys keep their meaning).

Twilio may drop keys pressed between two <Gather>s, so no meaning here depends on a key that
could have been lost: a lost key leaves a question unanswered (a reprompt), never a different
answer. Which question a key answers comes from the gather's signed action URL, not the call's
state, so the second `#` of `##`, or of `0#`, can only ever answer the question it was asked.

A set-up call (registering a phone) offers only `#` and `9`: nobody is signing in, so there is
nothing to report, and whoever got a mistyped number must not be able to block the account. There
`0`, `0#` and any answer to the fraud question are wrong keys.
"""
from __future__ import annotations

import hmac
import re

MENU, CONFIRM_FRAUD = "menu", "fraud"  # the questions, as the gathers' action URLs name them
ASKS = (MENU, CONFIRM_FRAUD)
MAX_REPEATS = 3  # `*` (and `0` at the fraud question) per call; after that it is a wrong key

# What a webhook's keys mean.
APPROVE = "approve"
REPORT_FRAUD = "report_fraud"
ASK_FRAUD = "ask_fraud"  # `0` alone: ask "press hash to report"
DO_NOT_CALL = "do_not_call"
REPEAT = "repeat"
MISMATCH = "mismatch"  # two digits that could have been the number on the screen, but are not
NO_INPUT = "no_input"
WRONG_KEY = "wrong_key"

A_NUMBER = re.compile(r"[1-8][0-9]")  # the shape of every number_match (mfa/method_types/call.py)


def meaning(digits: str, ask: str, number_match: str | None, repeats: int, *, setting_up: bool) -> str:
    """`number_match` is None on a `hash` call; `repeats` counts the repeats heard so far;
    `setting_up` is a set-up call (it has no fraud question)."""
    can_repeat = repeats < MAX_REPEATS
    if setting_up and (ask == CONFIRM_FRAUD or digits.startswith("0")):
        return NO_INPUT if digits == "" else WRONG_KEY
    if ask == CONFIRM_FRAUD:
        if digits == "#":
            return REPORT_FRAUD
        if digits in ("0", "*"):
            return REPEAT if can_repeat else WRONG_KEY
        return NO_INPUT if digits == "" else WRONG_KEY
    if digits == "0#":  # a number call's two-key gather, or a gather of an older release
        return REPORT_FRAUD
    if digits == "0":
        return ASK_FRAUD
    if digits.startswith("9"):
        return DO_NOT_CALL
    if digits.startswith("*"):
        return REPEAT if can_repeat else WRONG_KEY
    if number_match is None:
        return APPROVE if digits in ("#", "##") else NO_INPUT if digits == "" else WRONG_KEY
    if hmac.compare_digest(number_match.encode(), digits.encode()):
        return APPROVE
    if A_NUMBER.fullmatch(digits):
        return MISMATCH
    return NO_INPUT if digits == "" else WRONG_KEY
