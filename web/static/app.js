// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Move focus to an error summary so screen readers announce it first.
  var summary = document.querySelector(".nhsuk-error-summary");
  if (summary) { summary.focus(); }

  // The call waiting page: move on by itself once the call is answered (or fails).
  var poll = document.querySelector("[data-poll]");
  if (poll) {
    var started = poll.getAttribute("data-status");
    var timer = setInterval(function () {
      fetch(poll.getAttribute("data-poll"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          if (s.status !== started || (s.reason && s.status !== "pending")) {
            clearInterval(timer);
            window.location.assign(window.location.pathname);
          }
        })
        .catch(function () { /* keep trying; "Check again" works without us */ });
    }, 1500);
  }

  // "Resend code" waits out the 30-second spacing the server enforces anyway.
  document.querySelectorAll("[data-cooldown]").forEach(function (button) {
    var left = parseInt(button.getAttribute("data-cooldown"), 10) || 0;
    if (left <= 0) { return; }
    var note = document.querySelector("[data-cooldown-note]");
    button.disabled = true;
    var tick = setInterval(function () {
      left -= 1;
      if (note) { note.textContent = left > 0 ? "You can ask for a new code in " + left + " seconds." : ""; }
      if (left <= 0) { clearInterval(tick); button.disabled = false; }
    }, 1000);
  });

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
