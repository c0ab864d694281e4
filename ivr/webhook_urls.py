"""Every URL handed to Twilio, built in one place from PUBLIC_BASE_URL and the route paths.

The route decorators in ivr/webhooks.py and ivr/voice_webhooks.py use these same
constants, so each path is written once (tests/test_webhook_urls.py checks that every
URL made here reaches the intended view). Twilio signs exactly the URL it was given,
so the webhooks rebuild it from PUBLIC_BASE_URL too (ivr/webhooks.signed_url).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from mfa.call_keys import MENU
from voice_prompts.library import URL_PREFIX as PROMPTS_PREFIX

PREFIX = "/twilio"  # the signed webhooks' blueprint
VOICE_ANSWER = "/voice/answer"
VOICE_KEYS = "/voice/keys"
VOICE_NO_INPUT = "/voice/no-input"
VOICE_STATUS = "/voice/status"
VOICE_AMD = "/voice/amd"  # answering-machine detection's result (AsyncAmdStatusCallback)
SMS_STATUS = "/sms/status"
# Under PROMPTS_PREFIX, public (Twilio fetches recordings unsigned); the version is the file's hash.
RECORDED_PROMPT = "/<language>/<version>/<filename>"
RECORDED_PROMPT_UNVERSIONED = "/<language>/<filename>"  # the ?v=<hash> URLs of earlier releases


@dataclass(frozen=True)
class WebhookUrls:
    base: str  # PUBLIC_BASE_URL, without a trailing slash

    def voice_answer(self, challenge_id: str) -> str:
        return self._webhook(VOICE_ANSWER, challenge=challenge_id)

    def voice_status(self, challenge_id: str) -> str:
        return self._webhook(VOICE_STATUS, challenge=challenge_id)

    def voice_amd(self, challenge_id: str) -> str:
        return self._webhook(VOICE_AMD, challenge=challenge_id)

    def voice_keys(self, challenge_id: str, turn: int, ask: str = MENU, repeats: int = 0) -> str:
        """`ask`: the question the gather asks (mfa/call_keys.py); `repeats`: `*` repeats so far."""
        return self._webhook(VOICE_KEYS, **_question(challenge_id, turn, ask, repeats))

    def voice_no_input(self, challenge_id: str, turn: int, ask: str = MENU, repeats: int = 0) -> str:
        return self._webhook(VOICE_NO_INPUT, **_question(challenge_id, turn, ask, repeats))

    def sms_status(self) -> str:
        return self._webhook(SMS_STATUS)

    def recorded_prompt(self, url_path: str) -> str:
        """A recording's URL from its PromptLibrary path (PROMPTS_PREFIX/<language>/<hash>/<file>)."""
        if not url_path.startswith(PROMPTS_PREFIX + "/"):
            raise ValueError(f"not a recorded prompt path: {url_path}")
        return self.base + url_path

    def _webhook(self, path: str, **query: str | int) -> str:
        return self.base + PREFIX + path + (f"?{urlencode(query)}" if query else "")


def _question(challenge_id: str, turn: int, ask: str, repeats: int) -> dict[str, str | int]:
    """The query of a gather's URLs; Twilio signs it, so it comes back as it was given."""
    query: dict[str, str | int] = {"challenge": challenge_id, "turn": turn, "ask": ask}
    if repeats:
        query["repeats"] = repeats
    return query
