"""Walks a call through TwiML the way Twilio does (NOTES.md section 1).

Simulated time is reported, never slept: each passage of time the callee would live through
is a ("wait", seconds, why) event (a prompt heard outside a <Gather>, a gather's timeout).

The walker knows TwiML semantics only; everything it does to the outside world goes through a
`Line` (fetch a document, record what the callee heard, end the call, arm a timer), so the
rules below can be read without any networking or threading in the way.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin, urlparse

from .gather import GatherRules, TwimlError
from .timing import PLAY_DIGIT_SECONDS, PLAY_FALLBACK_SECONDS, say_seconds, wav_seconds

MAX_DOCUMENTS = 20  # TwiML documents per call: a looping app must not spin forever


class Line(Protocol):
    def is_live(self) -> bool: ...
    def record(self, *event: object) -> None: ...
    def fetch(self, url: str, method: str, extra: dict[str, str]) -> tuple[str | None, str]: ...
    def fetch_audio(self, url: str) -> tuple[int | None, bytes]: ...
    def fetch_words(self, url: str) -> tuple[str, str] | None: ...
    def end(self, status: str) -> None: ...
    def arm_gather_timer(self, seconds: float, token: tuple[int, int]) -> None: ...


@dataclass
class Document:
    url: str | None  # None for inline Twiml: nothing to resolve relative URLs against
    verbs: list[ET.Element]
    next_verb: int = 0


@dataclass
class ActiveGather:
    rules: GatherRules
    serial: int
    prompt_seconds: float = 0.0  # the nested prompts play before the timeout starts
    digits: str = ""
    idle_seconds: float = 0.0  # simulated time already spent since it began or the last key

    @property
    def token(self) -> tuple[int, int]:
        """Identifies 'this gather with this many digits': a stale timer must not fire."""
        return (self.serial, len(self.digits))

    @property
    def seconds_left(self) -> float:
        """Until it lapses: the inter-digit timeout once a key is in, else prompts + timeout."""
        window = self.rules.timeout + (0.0 if self.digits else self.prompt_seconds)
        return max(0.0, window - self.idle_seconds)


def tag_of(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def spoken_text(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def loop_count(element: ET.Element) -> int:
    """loop="0" means 'until hang-up'; the transcript records such a prompt once."""
    try:
        return max(1, min(int(element.get("loop", "1")), 10))
    except ValueError:
        return 1


class CallWalker:
    def __init__(self, line: Line):
        self.line = line
        self.document: Document | None = None
        self.gather: ActiveGather | None = None
        self._documents_loaded = 0
        self._gather_serial = 0

    # ---- entry points (all run on the stand-in's worker thread) ----

    def begin(self, url: str | None, method: str, twiml: str | None,
              fallback_url: str | None = None, fallback_method: str = "POST") -> None:
        """Start the call: Url wins over Twiml when both are given, as Twilio documents.
        If Url cannot be fetched or parsed, FallbackUrl gets a try with ErrorCode/ErrorUrl."""
        if not url:
            loaded = self._load_inline(twiml or "")
        elif not fallback_url:
            loaded = self._load(url, method, {})
        else:
            problem = self._try_load(url, method, {})
            loaded = problem is None
            if problem and self.line.is_live():
                self.line.record("error", problem)
                self.line.record("fallback", fallback_url)
                loaded = self._load(fallback_url, fallback_method,
                                    {"ErrorCode": problem.split()[0], "ErrorUrl": url})
        if loaded:
            self._run()

    def replace(self, url: str | None, method: str, twiml: str | None) -> None:
        """A REST update with Url or Twiml takes the live call over from whatever it was doing."""
        self.gather = None
        self.line.record("redirect-by-api", url or "twiml")
        loaded = self._load(url, method, {}) if url else self._load_inline(twiml or "")
        if loaded:
            self._run()

    def press(self, keys: str) -> None:
        self.line.record("digits-sent", keys)
        for key in keys:
            if not self.line.is_live():
                return
            if self.gather is None or not self.gather.rules.hears_dtmf:
                self.line.record("digits-ignored", key)
                continue
            self._key(self.gather, key)

    def lapse(self) -> None:
        """The gather's timeout passed without another key."""
        if self.gather is None or not self.line.is_live():
            return
        gather = self.gather
        why = "inter-digit timeout" if gather.digits else "no input"
        self.line.record("wait", gather.seconds_left, why)
        self.line.record("gather-timeout",)
        if gather.digits:
            self._submit(gather, gather.digits)
        else:
            self._no_input(gather)

    def pause(self, seconds: float) -> None:
        """The caller presses nothing for `seconds`: every gather whose time runs out within
        them lapses, as its timer would, and the rest is recorded as ("wait", s, "caller pause")."""
        while self.line.is_live() and self.gather is not None:
            gather = self.gather
            if seconds < gather.seconds_left:
                gather.idle_seconds += seconds
                if seconds > 0:
                    self.line.record("wait", float(seconds), "caller pause")
                return
            seconds -= gather.seconds_left
            self.lapse()

    def lapse_if_current(self, token: tuple[int, int]) -> None:
        if self.gather is not None and self.gather.token == token:
            self.lapse()

    # ---- <Gather> input ----

    def _key(self, gather: ActiveGather, key: str) -> None:
        rules = gather.rules
        gather.idle_seconds = 0.0  # a key stops the prompts and restarts the inter-digit timer
        if rules.finish_on_key and key == rules.finish_on_key:
            # The finish key is never part of Digits; alone it counts as no input at all.
            if gather.digits:
                self._submit(gather, gather.digits)
            else:
                self._no_input(gather)
            return
        gather.digits += key
        if rules.num_digits and len(gather.digits) >= rules.num_digits:
            self._submit(gather, gather.digits)
        else:
            self.line.arm_gather_timer(rules.timeout, gather.token)

    def _no_input(self, gather: ActiveGather) -> None:
        if gather.rules.action_on_empty_result:
            self._submit(gather, "")
            return
        self.gather = None
        self.line.record("no-input",)
        self._run()  # fall through to the verb after </Gather>

    def _submit(self, gather: ActiveGather, digits: str) -> None:
        self.gather = None
        action = gather.rules.action
        self.line.record("action", action, digits)
        if self._load(action, gather.rules.method, {"Digits": digits}):
            self._run()

    # ---- documents ----

    def _load(self, url: str, method: str, extra: dict[str, str]) -> bool:
        problem = self._try_load(url, method, extra)
        if problem is not None and self.line.is_live():
            self._fail(problem)
        return problem is None

    def _load_inline(self, twiml: str) -> bool:
        problem = self._adopt(twiml, None)
        return problem is None or self._fail(problem)

    def _try_load(self, url: str, method: str, extra: dict[str, str]) -> str | None:
        """Fetch and adopt a document; returns what went wrong (Twilio error code first)."""
        if not self.line.is_live():
            return "call ended before the document was requested"
        self._documents_loaded += 1
        if self._documents_loaded > MAX_DOCUMENTS:
            return f"stand-in limit: more than {MAX_DOCUMENTS} TwiML documents in one call"
        text, problem = self.line.fetch(url, method, extra)
        if not self.line.is_live():
            return "call ended while the app was answering"  # hung up or ended over REST
        if text is None:
            return problem
        return self._adopt(text, url)

    def _adopt(self, text: str, url: str | None) -> str | None:
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            return f"12100 Document parse failure: {exc} (from {url or 'Twiml'})"
        if tag_of(root) != "Response":
            return (f"12100 Document parse failure: root <{tag_of(root)}> is not <Response> "
                    f"(from {url or 'Twiml'})")
        self.document = Document(url, list(root))
        self.gather = None
        return None

    def _resolve(self, target: str | None) -> str:
        """Relative URLs resolve against the current document, as in a browser."""
        base = self.document.url if self.document else None
        target = (target or "").strip()
        if urlparse(target).scheme in ("http", "https"):
            return target
        if base is None:
            what = f"relative URL {target!r}" if target else "a <Gather> without action"
            raise TwimlError(f"{what} in inline Twiml: no document URL to resolve against")
        return urljoin(base, target) if target else base

    def _fail(self, problem: str) -> bool:
        """Twilio would play 'an application error has occurred' and hang up."""
        self.line.record("error", problem)
        self.gather = None
        self.line.end("completed")
        return False

    # ---- verbs ----

    def _run(self) -> None:
        while self.line.is_live() and self.gather is None:
            document = self.document
            assert document is not None  # runs only after a document loaded
            if document.next_verb >= len(document.verbs):
                self.line.record("end-of-twiml",)
                self.line.end("completed")
                return
            verb = document.verbs[document.next_verb]
            document.next_verb += 1
            try:
                self._perform(verb)
            except TwimlError as exc:
                self._fail(str(exc))

    def _perform(self, verb: ET.Element) -> None:
        name = tag_of(verb)
        if name in ("Say", "Play", "Pause"):
            seconds = self._prompt(verb)
            if seconds > 0:  # heard in full: nothing listens for a key to cut it short
                self.line.record("wait", seconds, f"<{name}>")
        elif name == "Gather":
            self._start_gather(verb)
        elif name == "Redirect":
            url = self._resolve(verb.text)
            self.line.record("redirect", url)
            self._load(url, verb.get("method", "POST"), {})  # _run goes on with the new one
        elif name == "Hangup":
            self.line.record("hangup",)
            self.line.end("completed")
        elif name == "Reject":
            reason = verb.get("reason", "rejected")
            self.line.record("reject", reason)
            self.line.end("busy" if reason == "busy" else "no-answer")
        else:
            self.line.record("error", f"<{name}> is not simulated by the stand-in; skipped")

    def _prompt(self, verb: ET.Element) -> float:
        """Perform Say/Play/Pause; returns how long it takes to hear (see timing.py)."""
        name = tag_of(verb)
        if name == "Pause":
            try:
                seconds = int(verb.get("length", "1"))
            except ValueError:
                raise TwimlError(f"<Pause length={verb.get('length')!r}> is not an integer") from None
            self.line.record("pause", seconds)
            return float(seconds)
        if name == "Say":
            text = spoken_text(verb)
            for _ in range(loop_count(verb)):
                self.line.record("say", text, verb.get("language", "en-US"),
                                 verb.get("voice", "man"))
            return say_seconds(text) * loop_count(verb)
        if digits := verb.get("digits"):
            self.line.record("play-digits", digits)
            return PLAY_DIGIT_SECONDS * len(digits)
        url = self._resolve(verb.text)
        status, audio = self.line.fetch_audio(url)  # fetched once: Twilio caches media
        words = self.line.fetch_words(url) if audio else None
        for _ in range(loop_count(verb)):
            self.line.record("play", url, status)
            if words:  # the dev phone shows what the recording says
                self.line.record("words", *words)
        if status is None or not 200 <= status < 300 or not audio:
            return 0.0  # Twilio skips media it cannot fetch; an empty body plays nothing
        length = wav_seconds(audio)
        return (PLAY_FALLBACK_SECONDS if length is None else length) * loop_count(verb)

    def _start_gather(self, verb: ET.Element) -> None:
        self.line.record("gather", dict(verb.attrib))
        action = self._resolve(verb.get("action"))  # default: the current document
        rules = GatherRules.from_attributes(verb.attrib, action)
        prompt_seconds = 0.0
        for child in verb:
            if tag_of(child) in ("Say", "Play", "Pause"):
                prompt_seconds += self._prompt(child)
            else:
                raise TwimlError(f"<{tag_of(child)}> cannot be nested in <Gather>")
        self._gather_serial += 1
        self.gather = ActiveGather(rules, self._gather_serial, prompt_seconds)
        # Twilio starts the timeout once the nested prompts have finished playing.
        self.line.arm_gather_timer(rules.timeout + prompt_seconds, self.gather.token)
