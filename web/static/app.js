// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Move focus to an error summary so screen readers announce it first; else to a heading that
  // says what changed (the call page after it moved on: ringing, answered, ended).
  var summary = document.querySelector(".nhsuk-error-summary");
  var moved = document.querySelector("[data-focus-on-load]");
  if (summary) { summary.focus(); } else if (moved) { moved.focus(); }

  // Sentences true only with this script running ("this page moves on by itself").
  document.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });

  // The answer to Microsoft Entra goes back by itself; its button is there for browsers without scripts.
  var answer = document.querySelector("form[data-submit-on-load]");
  if (answer) { answer.submit(); }

  // The call page follows the call: the server renders each moment (calling, ringing, answered,
  // an ending); reload when the sign-in's status or the call's progress changes.
  var poll = document.querySelector("[data-poll]");
  if (poll) {
    var status = poll.getAttribute("data-status");
    var progress = poll.getAttribute("data-progress");
    var timer = setInterval(function () {
      fetch(poll.getAttribute("data-poll"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          if (s.status !== status || s.progress !== progress) {
            clearInterval(timer);
            // Or the page's next step, posted by itself (the phone app set up: send its first request).
            var next = s.status === poll.getAttribute("data-poll-submit-on") &&
              document.getElementById(poll.getAttribute("data-poll-submit"));
            if (next) { next.submit(); } else { window.location.assign(window.location.pathname); }
          }
        })
        .catch(function () { /* keep trying; "Check again" works without us */ });
    }, 1500);
  }

  // "Resend code", "Call me again": wait out the 30-second spacing the server enforces anyway. The
  // server rounds the wait up, and the deadline is counted from when this page ran (after the server
  // answered), so a button never wakes before the server would accept it.
  var note = document.querySelector("[data-cooldown-note]");
  var cooling = Array.prototype.filter.call(document.querySelectorAll("[data-cooldown]"), function (button) {
    return (parseInt(button.getAttribute("data-cooldown"), 10) || 0) > 0;
  });
  if (cooling.length) {
    var deadline = Date.now() + parseInt(cooling[0].getAttribute("data-cooldown"), 10) * 1000;
    cooling.forEach(function (button) { button.disabled = true; });
    var tick = setInterval(function () {
      var left = Math.ceil((deadline - Date.now()) / 1000);
      if (note && left > 0) {  // never "0 seconds": at 0 the note goes and the buttons wake
        note.textContent = note.getAttribute("data-cooldown-note").replace("{n}", left + (left === 1 ? " second" : " seconds"));
      }
      if (left <= 0) {
        clearInterval(tick);
        if (note) { note.hidden = true; }
        cooling.forEach(function (button) { button.disabled = false; });
      }
    }, 250);
  }

  // Copy buttons for an app password shown once.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () { button.textContent = "Copied"; });
    });
  });
  // The sign-in's time limit (WCAG 2.2.1): hidden until WARN_BEFORE its end, then shown and said
  // through the live region, with "Give me more time". Counted from the seconds the server gave.
  var limit = document.querySelector("[data-time-left]");
  if (limit) {
    var notice = limit.querySelector("[data-time-limit-notice]");
    var announce = limit.querySelector("[data-time-limit-announce]");
    var text = limit.querySelector("[data-time-limit-text]");
    var leftText = limit.querySelector("[data-time-limit-left]");  // a change window's "7 minutes" (optional)
    var endsAt = Date.now() + 1000 * parseInt(limit.getAttribute("data-time-left"), 10);
    var warnBefore = 1000 * parseInt(limit.getAttribute("data-warn-before"), 10);
    var warned = false;
    var inWords = function (ms) {
      var minutes = Math.ceil(ms / 60000);
      if (ms < 60000) { return "less than a minute"; }
      return minutes === 1 ? "1 minute" : minutes + " minutes";
    };
    var check = function () {
      var left = endsAt - Date.now();
      if (leftText && left > 0 && leftText.textContent !== inWords(left)) { leftText.textContent = inWords(left); }
      if (leftText && left <= 0) { leftText.parentNode.hidden = true; }  // the notice says it has ended
      if (left > warnBefore) { return; }
      var sentence = left > 0 ? limit.getAttribute("data-warning").replace("{m}", inWords(left))
        : limit.getAttribute("data-ended") || "Your time has run out. Reload the page to see what you can do next.";
      notice.classList.add("app-time-limit__notice--warning");
      notice.hidden = false;
      if (text.textContent !== sentence) { text.textContent = sentence; }
      if (!warned || left <= 0) { announce.textContent = sentence; }  // said once, and again at the end
      warned = true;
      if (left <= 0) { clearInterval(limitTimer); }
    };
    notice.hidden = true;
    var limitTimer = setInterval(check, 1000);
    check();
  }

  // A page that is one moment of something under way (the call page) says it through its live
  // region: filled a moment after load, so it is announced as a change, not read as the page.
  document.querySelectorAll("[data-announce]").forEach(function (region) {
    var source = document.querySelector(region.getAttribute("data-announce"));
    if (!source) { return; }
    setTimeout(function () { region.textContent = source.textContent.replace(/\s+/g, " ").trim(); }, 300);
  });
})();
