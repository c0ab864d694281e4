"""Call-flow steps rendered as TwiML: the only place that imports twilio.twiml."""
from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from ivr.call_flow import KEY_TIMEOUT_SECONDS, Hangup, Listen, Redirect, Speak
from ivr.webhook_urls import WebhookUrls


class PromptVoice:
    """Plays a fresh recording where there is one, else speaks the catalogue text."""

    def __init__(self, library, catalogue, service: str, base_url: str):
        self.library = library
        self.catalogue = catalogue
        self.service = service
        self.urls = WebhookUrls(base_url)

    def add(self, parent, prompt: str, language: str) -> None:
        recording = self.library.recording(prompt, language)
        if recording is not None:
            parent.play(self.urls.recorded_prompt(recording.url_path))
            return
        voice, say_language = self.catalogue.say_voice(language)
        parent.say(self.catalogue.text(prompt, language, self.service), voice=voice, language=say_language)


def render(steps: list, language: str, voice: PromptVoice) -> str:
    response = VoiceResponse()
    for step in steps:
        if isinstance(step, Listen):
            gather = response.gather(
                input="dtmf", action=step.action, method="POST", finish_on_key="",
                num_digits=2, timeout=KEY_TIMEOUT_SECONDS, action_on_empty_result=False,
            )
            for prompt in step.prompts:
                voice.add(gather, prompt, language)
        elif isinstance(step, Speak):
            voice.add(response, step.prompt, language)
        elif isinstance(step, Redirect):
            response.redirect(step.url, method="POST")
        elif isinstance(step, Hangup):
            response.hangup()
    return str(response)


def goodbye(language: str, voice: PromptVoice) -> str:
    """What a caller hears when anything goes wrong: never Twilio's "application error"."""
    return render([Speak("goodbye"), Hangup()], language, voice)
