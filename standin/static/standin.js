// Keeps the phone and inbox pages current without reloading: polls a small JSON endpoint for
// the network's version and, when it changes, swaps in the server-rendered panel. On the phone
// it also speaks new <Say> prompts (browser speech) and plays new <Play> audio, in order.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) return;

  var POLL_MS = 1000;
  var heard = {};         // transcript events already spoken/played, by "CallSid:index"
  var generation = 0;     // bumps on barge-in so queued prompts are skipped
  var queue = Promise.resolve();
  var playing = null;

  function currentVersion() {
    var marker = live.querySelector("[data-version]");
    return marker ? marker.getAttribute("data-version") : "";
  }

  function speak(el) {
    return new Promise(function (done) {
      if (!window.speechSynthesis) return done();
      var words = new SpeechSynthesisUtterance(el.getAttribute("data-speak"));
      words.lang = el.getAttribute("data-lang") || "en-US";
      words.onend = words.onerror = function () { done(); };
      window.speechSynthesis.speak(words);
    });
  }

  function play(el) {
    return new Promise(function (done) {
      // A detached Audio keeps playing when the panel is redrawn underneath it.
      playing = new Audio(el.getAttribute("data-play"));
      playing.onended = playing.onerror = function () { done(); };
      playing.play().catch(function () { done(); });
    });
  }

  function hearNewPrompts(announce) {  // the words of the new prompts, for the live region
    var words = [];
    var events = live.querySelectorAll("[data-event]");
    for (var i = 0; i < events.length; i++) {
      var el = events[i];
      var key = el.getAttribute("data-event");
      if (heard[key]) continue;
      heard[key] = true;
      if (!announce) continue;
      var spoken = el.getAttribute("data-speak") || (el.querySelector(".words") || {}).textContent;
      if (spoken) words.push(spoken.replace(/\s+/g, " ").trim());
      (function (el, mine) {
        queue = queue.then(function () {
          if (mine !== generation) return null;
          return el.hasAttribute("data-speak") ? speak(el) : play(el);
        });
      })(el, generation);
    }
    return words;
  }

  function bargeIn() {
    // A key press stops the prompt, as it does on a real <Gather>.
    generation += 1;
    if (window.speechSynthesis) window.speechSynthesis.cancel();
    if (playing) playing.pause();
    queue = Promise.resolve();
  }

  // Redrawing replaces the buttons: keep focus on the same one (a keypad key), or, when it went
  // (Answer, once answered), on the first button of the same call, so a keyboard user is not
  // thrown back to the top of the page.
  function focusedPlace() {
    var el = document.activeElement;
    if (!el || !live.contains(el) || el.tagName !== "BUTTON") return null;
    var call = el.closest("[data-call]");
    return { call: call && call.getAttribute("data-call"), action: el.form && el.form.getAttribute("action"),
             value: el.value, text: el.textContent };
  }

  function restoreFocus(place) {
    if (!place) return;
    var buttons = live.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) {
      var b = buttons[i];
      if (b.form && b.form.getAttribute("action") === place.action && b.value === place.value &&
          b.textContent === place.text) { b.focus(); return; }
    }
    var call = place.call && live.querySelector('[data-call="' + place.call + '"] button');
    if (call) { call.focus(); return; }
    live.setAttribute("tabindex", "-1");
    live.focus();
  }

  // What the live region says: each call whose status changed, then the words newly said.
  var statuses = {};
  function callStatuses() {
    var now = {};
    live.querySelectorAll("[data-call]").forEach(function (call) {
      var meta = call.querySelector(".meta");
      now[call.getAttribute("data-call")] = meta ? meta.textContent.replace(/\s+/g, " ").trim() : "";
    });
    return now;
  }

  function announce(sentences) {
    var region = document.getElementById("phone-status");
    if (region && sentences.length) region.textContent = sentences.join(" ");
  }

  function changes(newWords) {
    var now = callStatuses();
    var said = [];
    Object.keys(now).forEach(function (sid) { if (statuses[sid] !== now[sid]) said.push(now[sid] + "."); });
    Object.keys(statuses).forEach(function (sid) { if (!(sid in now)) said.push("The call has ended."); });
    statuses = now;
    return said.concat(newWords);
  }

  function redraw() {
    return fetch(live.getAttribute("data-panel"), { cache: "no-store" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var place = focusedPlace();
        live.innerHTML = html;  // rendered and escaped by the server's templates
        restoreFocus(place);
        announce(changes(hearNewPrompts(true)));
      });
  }

  function poll() {
    fetch(live.getAttribute("data-poll"), { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (state) {
        if (String(state.version) !== currentVersion()) return redraw();
        return null;
      })
      .catch(function () { /* stand-in restarting: try again next tick */ })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  live.addEventListener("submit", function (event) {
    var form = event.target;
    event.preventDefault();
    var data = new URLSearchParams(new FormData(form));
    if (event.submitter && event.submitter.name) {
      data.append(event.submitter.name, event.submitter.value);
    }
    if (form.hasAttribute("data-barge-in")) bargeIn();
    fetch(form.action, { method: "POST", body: data, headers: { Accept: "application/json" } })
      .then(redraw)
      .catch(function () { /* the next poll redraws anyway */ });
  });

  hearNewPrompts(false);  // what was said before the page opened is not replayed
  statuses = callStatuses();
  window.setTimeout(poll, POLL_MS);
})();
