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

  function hearNewPrompts(announce) {
    var events = live.querySelectorAll("[data-event]");
    for (var i = 0; i < events.length; i++) {
      var el = events[i];
      var key = el.getAttribute("data-event");
      if (heard[key]) continue;
      heard[key] = true;
      if (!announce) continue;
      (function (el, mine) {
        queue = queue.then(function () {
          if (mine !== generation) return null;
          return el.hasAttribute("data-speak") ? speak(el) : play(el);
        });
      })(el, generation);
    }
  }

  function bargeIn() {
    // A key press stops the prompt, as it does on a real <Gather>.
    generation += 1;
    if (window.speechSynthesis) window.speechSynthesis.cancel();
    if (playing) playing.pause();
    queue = Promise.resolve();
  }

  function redraw() {
    return fetch(live.getAttribute("data-panel"), { cache: "no-store" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        live.innerHTML = html;  // rendered and escaped by the server's templates
        hearNewPrompts(true);
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
  window.setTimeout(poll, POLL_MS);
})();
