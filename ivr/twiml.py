"""Call-flow steps rendered as TwiML: the only place that imports twilio.twiml."""
from __future__ import annotations

import re
from dataclasses import replace
from xml.sax.saxutils import escape

from twilio.twiml.voice_response import VoiceResponse

from ivr.call_flow import Hangup, Listen, Redirect, Speak
from ivr.webhook_urls import WebhookUrls
from voice_prompts.library import Playback


class PromptVoice:
    """Plays a prompt's recording where `playback` (VOICE_PROMPTS) allows, else speaks the
    catalogue text with the language's <Say> voice and service name (see voice_prompts/library.py)."""

    def __init__(self, library, catalogue, base_url: str, playback: Playback | None = None):
        self.library = library
        self.catalogue = catalogue
        self.playback = playback or Playback()
        self.urls = WebhookUrls(base_url)
        # Documents by (steps with their URLs as slots, language): a few dozen at most, made
        # once each, then filled in per call (render). Dropped when the library is replaced.
        self._documents: dict[tuple, str] = {}
        self._documents_for = library

    def document(self, shape: tuple, language: str) -> str:
        if self._documents_for is not self.library:
            self._documents, self._documents_for = {}, self.library
        key = (shape, language)
        document = self._documents.get(key)
        if document is None:
            document = self._documents[key] = _render(shape, language, self)
        return document

    def add(self, parent, prompt: str, language: str) -> None:
        recording = self.library.to_play(prompt, language, self.playback)
        if recording is not None:
            parent.play(self.urls.recorded_prompt(recording.url_path))
            return
        voice, say_language = self.catalogue.say_voice(language)
        words = self.catalogue.text(prompt, language, self.library.service_for(language))
        parent.say(words, voice=voice, language=say_language)


def _slot(index: int) -> str:
    return f"https://slot.invalid/{index}/"  # needs no escaping; the closing / keeps 1 from matching 10


SLOT = re.compile(r"https://slot\.invalid/(\d+)/")
# As the twilio library writes attribute values: XML would read a raw newline or tab as a space.
ATTRIBUTE_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#09;"}


def render(steps: list, language: str, voice: PromptVoice) -> str:
    """The TwiML for `steps`: the document for their shape and language, made once, with this
    call's URLs filled in (building it with the twilio library costs more than the rest of a
    webhook's rendering)."""
    urls: list[str] = []
    shape: list = []
    for step in steps:
        if isinstance(step, Listen):
            shape.append(replace(step, action=_slot(len(urls))))
            urls.append(step.action)
        elif isinstance(step, Redirect):
            shape.append(replace(step, url=_slot(len(urls))))
            urls.append(step.url)
        else:
            shape.append(step)
    document = voice.document(tuple(shape), language)
    # One pass, so a URL filled in is never searched again for another slot.
    return SLOT.sub(lambda slot: escape(urls[int(slot.group(1))], ATTRIBUTE_ESCAPES), document)


def _render(steps: tuple, language: str, voice: PromptVoice) -> str:
    response = VoiceResponse()
    for step in steps:
        if isinstance(step, Listen):
            gather = response.gather(
                input="dtmf", action=step.action, method="POST", finish_on_key="",
                num_digits=step.num_digits, timeout=step.timeout, action_on_empty_result=False,
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
