"""The verification call as small values: what to say, when to listen, when to hang up.

`steps_for` maps a domain CallTurn to steps; ivr/twiml.py renders them. The
prompt is nested in the <Gather> so a key works the moment the call is
answered. finishOnKey="" with numDigits=2: Twilio treats a lone finish key as
no input at all, so `#` must be an ordinary key here; a lone `#` (or `9`)
arrives when the inter-digit timeout lapses, `0#` arrives at once.
"""
from __future__ import annotations

from dataclasses import dataclass

from ivr.webhook_urls import WebhookUrls
from mfa.calls import CallTurn

KEY_TIMEOUT_SECONDS = 5
ASK = ("press_hash", "report_fraud", "not_mine")
OPENINGS = {"prompt": "greeting", "reprompt_no_input": "no_input", "reprompt_wrong_key": "not_recognised"}
FAREWELLS = ("verified", "fraud_recorded", "do_not_call", "goodbye", "no_input_goodbye", "wrong_key_goodbye")


@dataclass(frozen=True)
class Speak:
    prompt: str


@dataclass(frozen=True)
class Listen:
    """A <Gather> for up to two keys, speaking `prompts` while it waits."""

    prompts: tuple[str, ...]
    action: str


@dataclass(frozen=True)
class Redirect:
    url: str


@dataclass(frozen=True)
class Hangup:
    pass


def steps_for(turn: CallTurn, urls: "CallUrls") -> list:
    if turn.outcome in OPENINGS:
        return [Listen((OPENINGS[turn.outcome], *ASK), urls.keys), Redirect(urls.no_input)]
    if turn.outcome in FAREWELLS:
        return [Speak(turn.outcome), Hangup()]
    return [Hangup()]


@dataclass(frozen=True)
class CallUrls:
    """The webhook URLs of one challenge's turn (ivr/webhook_urls.py builds them)."""

    urls: WebhookUrls
    challenge_id: str
    turn: int = 0

    @property
    def keys(self) -> str:
        return self.urls.voice_keys(self.challenge_id, self.turn)

    @property
    def no_input(self) -> str:
        return self.urls.voice_no_input(self.challenge_id, self.turn)
