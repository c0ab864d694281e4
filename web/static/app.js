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
            window.location.assign(window.location.pathname);
          }
        })
        .catch(function () { /* keep trying; "Check again" works without us */ });
    }, 1500);
  }

  // "Resend code", "Call me again": wait out the 30-second spacing the server enforces anyway.
  var note = document.querySelector("[data-cooldown-note]");
  var cooling = Array.prototype.filter.call(document.querySelectorAll("[data-cooldown]"), function (button) {
    return (parseInt(button.getAttribute("data-cooldown"), 10) || 0) > 0;
  });
  if (cooling.length) {
    var left = parseInt(cooling[0].getAttribute("data-cooldown"), 10);
    cooling.forEach(function (button) { button.disabled = true; });
    var tick = setInterval(function () {
      left -= 1;
      if (note) { note.textContent = left > 0 ? note.getAttribute("data-cooldown-note").replace("{n}", left) : ""; }
      if (left <= 0) {
        clearInterval(tick);
        cooling.forEach(function (button) { button.disabled = false; });
      }
    }, 1000);
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
})();
