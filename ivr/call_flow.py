"""The verification call as small values: what to say, when to listen, when to hang up.

`steps_for` maps a domain CallTurn to steps; ivr/twiml.py renders them. The
prompt is nested in the <Gather> so a key works the moment the call is
answered. No finish key (finishOnKey=""): Twilio treats a lone finish key as no
input at all, so `#` must be an ordinary key. The first question of a `hash` call
takes one key, so `#` is posted the instant it is pressed (no inter-digit wait);
`0` gets its own one-key question ("to report it, press hash"). A `number` call
takes the two digits on the sign-in screen, with a short inter-digit timeout.
What the keys mean is mfa/call_keys.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from ivr.webhook_urls import WebhookUrls
from mfa.call_keys import CONFIRM_FRAUD, MENU
from mfa.calls import CallTurn
from mfa.policy import HASH, NUMBER

KEY_TIMEOUT_SECONDS = 5  # a one-key question: silence for this long after the prompt is no input
NUMBER_TIMEOUT_SECONDS = 4  # between the two digits of a number (and after the prompt)
# The first prompt of a call, by CALL_APPROVAL mode; `*` repeats it.
FIRST_PROMPT: dict[str, tuple[str, ...]] = {
    HASH: ("greeting", "press_hash", "report_fraud", "not_mine"),
    NUMBER: ("greeting", "enter_number", "report_fraud", "not_mine"),
}
# A registration call proves a new phone: nobody is signing in, so it never says so, and it asks
# no fraud question (whoever did not ask for the call is a stranger: "wrong number", 9).
SETTING_UP: dict[str, tuple[str, ...]] = {
    HASH: ("greeting", "press_hash_setup", "not_mine"),
    NUMBER: ("greeting", "enter_number", "not_mine"),
}
SETTING_UP_FAREWELLS = {"verified": "setup_verified"}
ASK = FIRST_PROMPT[HASH][1:]  # the menu of a hash call, after a reprompt's opening
OPENINGS = {"reprompt_no_input": "no_input", "reprompt_wrong_key": "not_recognised",
            "reprompt_mismatch": "number_mismatch"}
FAREWELLS = ("verified", "fraud_recorded", "do_not_call", "goodbye", "no_input_goodbye", "wrong_key_goodbye",
             "mismatch_goodbye")


@dataclass(frozen=True)
class Speak:
    prompt: str


@dataclass(frozen=True)
class Listen:
    """A <Gather> for `num_digits` keys, speaking `prompts` while it waits; `timeout` seconds
    of silence (after the prompts, or between keys) end it."""

    prompts: tuple[str, ...]
    action: str
    num_digits: int = 1
    timeout: int = KEY_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Redirect:
    url: str


@dataclass(frozen=True)
class Hangup:
    pass


def steps_for(turn: CallTurn, urls: "CallUrls") -> list:
    if turn.outcome == "prompt" or turn.outcome in OPENINGS:
        return [listen(turn, urls.keys), Redirect(urls.no_input)]
    if turn.outcome in FAREWELLS:
        farewell = SETTING_UP_FAREWELLS.get(turn.outcome, turn.outcome) if turn.setting_up else turn.outcome
        return [Speak(farewell), Hangup()]
    return [Hangup()]


def listen(turn: CallTurn, action: str) -> Listen:
    """The question `turn.ask`: all of it on "prompt" (answering, `*`, `0`), or a reprompt's
    opening and the question again (the menu without its greeting)."""
    approval = turn.approval if turn.approval in FIRST_PROMPT else HASH
    whole: tuple[str, ...]
    question: tuple[str, ...]
    if turn.ask == CONFIRM_FRAUD:
        whole = question = ("confirm_fraud",)
    else:
        whole = (SETTING_UP if turn.setting_up else FIRST_PROMPT)[approval]
        question = whole[1:]
    prompts = (OPENINGS[turn.outcome], *question) if turn.outcome in OPENINGS else whole
    if turn.ask != CONFIRM_FRAUD and approval == NUMBER:
        return Listen(prompts, action, num_digits=2, timeout=NUMBER_TIMEOUT_SECONDS)
    return Listen(prompts, action)


@dataclass(frozen=True)
class CallUrls:
    """The webhook URLs of one challenge's turn (ivr/webhook_urls.py builds them)."""

    urls: WebhookUrls
    challenge_id: str
    turn: int = 0
    ask: str = MENU
    repeats: int = 0

    @property
    def keys(self) -> str:
        return self.urls.voice_keys(self.challenge_id, self.turn, self.ask, self.repeats)

    @property
    def no_input(self) -> str:
        return self.urls.voice_no_input(self.challenge_id, self.turn, self.ask, self.repeats)
