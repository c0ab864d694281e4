// The phone app: enrol this phone, then approve or deny sign-in requests (protocol: PUSH_SPEC).
// Plain JavaScript, no build step. Everything the server sends is put in the page as text.
(function () {
  "use strict";

  var DB_NAME = "mfa-authenticator";
  var STORE = "device";
  var RECORD = "current";  // one device per phone: enrolling again replaces it
  var POLL_MS = 2000;
  var CLOCK_LIMIT_MS = 55000;  // the server refuses timestamps more than 60 s from its clock
  var TOKEN_PATTERN = /^[A-Za-z0-9_-]{20,100}$/;  // the server's enrolment tokens (base64url, 43 characters)
  var SERVICE = document.body.getAttribute("data-service") || "";
  var encoder = new TextEncoder();

  var state = {
    screen: null,
    device: null,      // {deviceId, keyPair, name, enrolledAt, service, username, subscriptionEndpoint}
    config: null,      // GET /device/v1/config
    enrolToken: null,
    enrolPasted: false, // the token came from the paste form: Back returns there
    requests: [],
    currentId: null,   // the request shown in full
    focusId: null,     // asked for by #request=ID or a notification tap
    othersKey: "",
    answered: {},      // ids this phone answered: their disappearance is no news
    seen: {},          // ids already shown once: only a new one clears the last result
    timer: null,
    polling: false,
    pollAgain: false
  };

  function $(id) { return document.getElementById(id); }

  // --- encodings ---------------------------------------------------------------------------

  function b64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var text = "";
    for (var i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromB64url(text) {
    var padded = text.replace(/-/g, "+").replace(/_/g, "/");
    while (padded.length % 4) { padded += "="; }
    var binary = atob(padded);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes;
  }

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }

  function nonce() {
    return b64url(crypto.getRandomValues(new Uint8Array(16)));
  }

  // --- storage: the key pair (CryptoKey objects, the private one not extractable) in IndexedDB ---

  function openDb() {
    return new Promise(function (resolve, reject) {
      var opening = indexedDB.open(DB_NAME, 1);
      opening.onupgradeneeded = function () { opening.result.createObjectStore(STORE); };
      opening.onsuccess = function () { resolve(opening.result); };
      opening.onerror = function () { reject(opening.error); };
    });
  }

  function withStore(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var request = work(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(request.result); };
        tx.onerror = tx.onabort = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function loadDevice() { return withStore("readonly", function (s) { return s.get(RECORD); }); }
  function saveDevice(record) { return withStore("readwrite", function (s) { return s.put(record, RECORD); }); }
  function forgetDevice() { return withStore("readwrite", function (s) { return s.delete(RECORD); }); }

  // --- the device API ------------------------------------------------------------------------

  function readAnswer(response) {
    return response.text().then(function (text) {
      var data = {};
      try { data = text ? JSON.parse(text) : {}; } catch (e) { data = {}; }
      return { status: response.status, data: data || {}, response: response };
    });
  }

  // A signed request: the body is serialised once and exactly those bytes are hashed and sent.
  function signed(method, path, payload, keyPair, deviceId) {
    var body = payload === undefined ? "" : JSON.stringify(payload);
    var bodyBytes = encoder.encode(body);
    var timestamp = String(Math.floor(Date.now() / 1000));
    var once = nonce();
    return crypto.subtle.digest("SHA-256", bodyBytes).then(function (digest) {
      var canonical = ["MFA-DEVICE-V1", method, path, hex(digest), timestamp, once, deviceId || ""].join("\n");
      return crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keyPair.privateKey, encoder.encode(canonical));
    }).then(function (signature) {
      var headers = {
        "Accept": "application/json",
        "X-Device-Timestamp": timestamp,
        "X-Device-Nonce": once,
        "X-Device-Signature": b64url(signature)
      };
      if (deviceId) { headers["X-Device-Id"] = deviceId; }
      if (payload !== undefined) { headers["Content-Type"] = "application/json"; }
      // No cookies: the device API knows this phone by its key alone.
      return fetch(path, { method: method, headers: headers, body: payload === undefined ? undefined : body,
                           credentials: "omit", cache: "no-store" });
    }).then(readAnswer);
  }

  function asDevice(method, path, payload) {
    return signed(method, path, payload, state.device.keyPair, state.device.deviceId);
  }

  function getConfig() {
    if (state.config) { return Promise.resolve(state.config); }
    return fetch("/device/v1/config", { credentials: "omit", cache: "no-store", headers: { Accept: "application/json" } })
      .then(readAnswer)
      .then(function (answer) {
        if (answer.status !== 200) { throw new Error("config " + answer.status); }
        state.config = answer.data;
        return state.config;
      });
  }

  // --- screens ---------------------------------------------------------------------------------

  function show(id, heading) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-screen]"), function (section) {
      section.hidden = section.id !== id;
    });
    var words = heading || $(id).getAttribute("data-heading");
    var h1 = $("screen-heading");
    h1.textContent = words;
    $("back-link").hidden = !backFrom(id);
    // A form's errors go with its screen (the title's "Error: " with them).
    if (id !== "screen-start") { linkError(null); }
    if (id !== "screen-enrol") { showError($("enrol-error"), "nhsuk-error-summary", false); nameError(null); }
    retitle();
    stopPolling();  // showRequests starts it again
    state.screen = id;
    h1.focus();
  }

  // The page title follows the heading, with "Error: " first while an error shows (WCAG 2.4.2).
  function retitle() {
    var error = document.querySelector(".nhsuk-error-summary:not([hidden]), .nhsuk-error-message:not([hidden])");
    document.title = (error ? "Error: " : "") + $("screen-heading").textContent + " – " + SERVICE + " Authenticator";
  }

  // An error element carries its NHS.UK class only while shown.
  function showError(element, className, on) {
    element.hidden = !on;
    element.classList.toggle(className, on);
    retitle();
  }

  function route() {
    var hash = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (hash.get("enrol")) {
      showEnrol(hash.get("enrol"), false);
    } else if (state.device) {
      state.focusId = hash.get("request") || state.focusId;
      if (state.screen === "screen-requests") { pollNow(); } else { showRequests(false); }
    } else {
      showStart();
    }
  }

  // Only the app's own addresses move it: the skip link's #maincontent, say, leaves a screen as it is.
  function hashChanged() {
    var hash = location.hash.replace(/^#/, "");
    if (!hash || /(^|&)(enrol|request)=/.test(hash)) { route(); }
  }

  // Where Back goes from this screen, or null for no Back.
  function backFrom(id) {
    if (id === "screen-enrol" && state.enrolPasted) { return showStart; }
    if (id === "screen-start" && state.device) { return function () { showRequests(false); }; }
    return null;
  }

  function goBack(event) {
    var back = backFrom(state.screen);
    if (!back) { return; }  // the link's own address (/app) then starts the app afresh
    event.preventDefault();
    back();
  }

  // --- set-up by a pasted link ---------------------------------------------------------------
  // The way in for an app on an iPhone's Home Screen, which cannot be opened by the link itself.

  function showStart() {
    show("screen-start", state.device ? "Set up this phone again" : null);
  }

  // The token from this site's own set-up link, or the token alone; null for anything else.
  function tokenFrom(typed) {
    var text = typed.trim();
    if (TOKEN_PATTERN.test(text)) { return text; }
    var url;
    try { url = new URL(text); } catch (e) { return null; }
    if (url.origin !== location.origin || url.pathname !== "/app") { return null; }
    var token = new URLSearchParams(url.hash.replace(/^#/, "")).get("enrol");
    return token && TOKEN_PATTERN.test(token) ? token : null;
  }

  function linkError(message) {
    var input = $("enrol-link");
    $("link-error-link").textContent = message || "";
    showError($("link-error"), "nhsuk-error-summary", !!message);
    $("enrol-link-group").classList.toggle("nhsuk-form-group--error", !!message);
    input.classList.toggle("nhsuk-input--error", !!message);
    $("enrol-link-error-text").textContent = message || "";
    showError($("enrol-link-error"), "nhsuk-error-message", !!message);
    input.setAttribute("aria-describedby", "enrol-link-hint" + (message ? " enrol-link-error" : ""));
    if (message) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
  }

  function submitLink(event) {
    event.preventDefault();
    var typed = $("enrol-link").value;  // kept as typed, whatever happens
    var token = tokenFrom(typed);
    if (!token) {
      linkError(typed.trim() ? "Enter a set-up link that starts with " + location.origin + "/app#enrol="
                             : "Paste the set-up link from your security info page");
      $("link-error").focus();
      return;
    }
    linkError(null);
    // Straight to the next step: the token goes in no address (not even the fragment) and no history.
    showEnrol(token, true);
  }

  // The summary's link moves to the field itself (without the hash change its href would make).
  function toLinkField(event) {
    event.preventDefault();
    $("enrol-link").focus();
  }

  // --- enrolment -------------------------------------------------------------------------------

  function guessName() {
    var ua = navigator.userAgent || "";
    if (/iPhone/.test(ua)) { return "iPhone"; }
    if (/iPad/.test(ua)) { return "iPad"; }
    if (/Android/.test(ua)) { return "Android phone"; }
    return "Phone";
  }

  function showEnrol(token, pasted) {
    state.enrolToken = token;
    state.enrolPasted = pasted;
    showError($("enrol-error"), "nhsuk-error-summary", false);  // about the last link, not this one
    var input = $("device-name");
    if (!input.value) { input.value = (state.device && state.device.name) || guessName(); }
    $("enrol-replace").hidden = !state.device;
    $("enrol-replace-who").textContent = state.device && state.device.username
      ? " for " + state.device.username : "";
    show("screen-enrol");
    getConfig().catch(function () { /* asked again on submit */ });
  }

  function enrolError(message) {
    $("enrol-error-text").textContent = message;
    showError($("enrol-error"), "nhsuk-error-summary", true);
    $("enrol-error").focus();
  }

  function nameError(message) {
    $("device-name-group").classList.toggle("nhsuk-form-group--error", !!message);
    $("device-name").classList.toggle("nhsuk-input--error", !!message);
    $("device-name-error-text").textContent = message || "";
    showError($("device-name-error"), "nhsuk-error-message", !!message);
    $("device-name").setAttribute("aria-describedby", "device-name-hint" + (message ? " device-name-error" : ""));
    if (message) { $("device-name").setAttribute("aria-invalid", "true"); } else { $("device-name").removeAttribute("aria-invalid"); }
  }

  function pushSupported(config) {
    return !!(config && config.vapid_public_key && "serviceWorker" in navigator && "PushManager" in window &&
              "Notification" in window);
  }

  // Push set-up never holds the app up for long: without it the app polls.
  function withinSeconds(seconds, promise) {
    var timeout = new Promise(function (resolve, reject) {
      setTimeout(function () { reject(new Error("timed out")); }, seconds * 1000);
    });
    return Promise.race([promise, timeout]);
  }

  function registerWorker() {
    return navigator.serviceWorker.register("/app/sw.js", { scope: "/app" }).then(function () {
      return withinSeconds(10, navigator.serviceWorker.ready);
    });
  }

  function sameKey(a, b) {
    if (!a) { return false; }
    var x = new Uint8Array(a);
    if (x.length !== b.length) { return false; }
    for (var i = 0; i < x.length; i++) { if (x[i] !== b[i]) { return false; } }
    return true;
  }

  // A push subscription for this phone, or null (any failure: the app polls instead).
  function subscribe(config, permission) {
    if (!pushSupported(config)) { return Promise.resolve(null); }
    var key = fromB64url(config.vapid_public_key);
    var registration;
    return Promise.all([registerWorker(), permission]).then(function (results) {
      registration = results[0];
      if (results[1] !== "granted") { return null; }
      return registration.pushManager.getSubscription().then(function (existing) {
        if (existing && sameKey(existing.options && existing.options.applicationServerKey, key)) { return existing; }
        var dropped = existing ? existing.unsubscribe() : Promise.resolve();
        return dropped.then(function () {
          return withinSeconds(15, registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }));
        });
      });
    }).catch(function () { return null; });
  }

  // Asked for at once, inside the tap: Safari allows the question only then.
  function askPermission(config) {
    if (!pushSupported(config)) { return Promise.resolve("unsupported"); }
    if (Notification.permission !== "default") { return Promise.resolve(Notification.permission); }
    try {
      return Promise.resolve(Notification.requestPermission()).catch(function () { return "denied"; });
    } catch (e) {
      return Promise.resolve("denied");
    }
  }

  function submitEnrol(event) {
    event.preventDefault();
    var name = $("device-name").value.trim();
    showError($("enrol-error"), "nhsuk-error-summary", false);
    if (!name) {
      nameError("Enter a name for this phone");
      $("device-name").focus();
      return;
    }
    nameError(null);
    var button = $("enrol-button");
    button.disabled = true;
    var permission = state.config ? askPermission(state.config) : null;
    var keyPair, subscription = null;
    crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]).then(function (made) {
      keyPair = made;
      return getConfig();
    }).then(function (config) {
      return subscribe(config, permission || askPermission(config));
    }).then(function (sub) {
      subscription = sub;
      return crypto.subtle.exportKey("raw", keyPair.publicKey);
    }).then(function (rawPublicKey) {
      return signed("POST", "/device/v1/enrol", {
        token: state.enrolToken,
        public_key: b64url(rawPublicKey),
        name: name,
        subscription: subscription ? subscription.toJSON() : null
      }, keyPair, "");
    }).then(function (answer) {
      if (answer.status === 201) {
        var record = {
          deviceId: answer.data.device_id,
          keyPair: keyPair,
          name: name,
          enrolledAt: new Date().toISOString(),
          service: answer.data.service || SERVICE,
          username: answer.data.username || "",
          subscriptionEndpoint: subscription ? subscription.endpoint : null
        };
        return saveDevice(record).then(function () {
          state.device = record;
          state.enrolToken = null;
          state.enrolPasted = false;
          $("enrol-link").value = "";  // spent: nothing to go back to
          state.answered = {};
          state.seen = {};
          history.replaceState(null, "", location.pathname + location.search);
          showRequests(true);
        });
      }
      if (answer.status === 410) {
        enrolError("This link has been used or has expired. Ask for a new one on the security info page.");
      } else if (answer.status === 400) {
        enrolError(answer.data.message || "Something in the request was not right. Check the name and try again.");
      } else {
        enrolError(answer.data.message || "Something went wrong at " + SERVICE + ". Try again.");
      }
    }).catch(function () {
      enrolError("Could not reach " + SERVICE + " to add this phone. Check your connection and try again.");
    }).then(function () {
      button.disabled = false;
    });
  }

  // --- notifications on the requests screen ---------------------------------------------------

  function putSubscription(subscription) {
    var endpoint = subscription ? subscription.endpoint : null;
    if (endpoint === (state.device.subscriptionEndpoint || null)) { return Promise.resolve(); }
    return asDevice("PUT", "/device/v1/subscription", { subscription: subscription ? subscription.toJSON() : null })
      .then(function (answer) {
        if (answer.status === 200) {
          state.device.subscriptionEndpoint = endpoint;
          return saveDevice(state.device);
        }
        if (answer.status === 401) { unauthorised(answer.response); }
      }).catch(function () { /* tried again next time the app opens */ });
  }

  function pushNotice(off, canAsk) {
    $("push-off").hidden = !off;
    $("push-on").hidden = !canAsk;
    // Safari offers Web Push only to an app opened from the Home Screen.
    var iOS = /iPhone|iPad/.test(navigator.userAgent || "");
    var installed = navigator.standalone === true || window.matchMedia("(display-mode: standalone)").matches;
    $("ios-hint").hidden = !(off && iOS && !installed);
  }

  function refreshPush() {
    return getConfig().then(function (config) {
      if (!pushSupported(config)) { pushNotice(true, false); return; }
      if (Notification.permission !== "granted") {
        pushNotice(true, Notification.permission === "default");
        return putSubscription(null);
      }
      return subscribe(config, Promise.resolve("granted")).then(function (subscription) {
        pushNotice(!subscription, false);
        if (subscription) { return putSubscription(subscription); }
      });
    }).catch(function () { pushNotice(true, false); });
  }

  function turnOnNotifications() {
    var permission = askPermission(state.config);
    $("push-on").disabled = true;
    permission.then(function () { return refreshPush(); }).then(function () { $("push-on").disabled = false; });
  }

  // --- requests ---------------------------------------------------------------------------------

  function showRequests(justEnrolled) {
    var device = state.device;
    $("enrolled-notice").hidden = !justEnrolled;
    $("enrolled-notice-text").textContent = "Sign-in requests" + (device.username ? " for " + device.username : "") +
      " will appear here.";
    $("device-line").textContent = "This phone: " + device.name + (device.username ? " · " + device.username : "");
    setResult("", "");
    state.currentId = null;
    state.othersKey = null;
    $("request-current").textContent = "";
    show("screen-requests", justEnrolled ? "This phone is set up" : null);
    refreshPush();
    pollNow();
  }

  function stopPolling() {
    clearTimeout(state.timer);
    state.timer = null;
  }

  function pollNow() {
    stopPolling();
    if (state.polling) { state.pollAgain = true; return; }
    poll();
  }

  function poll() {
    var clockProblem = state.screen === "screen-removed" && !$("clock-text").hidden;
    if (!state.device || (state.screen !== "screen-requests" && !clockProblem)) { return; }
    if (document.visibilityState !== "visible") { return; }  // visibilitychange starts it again
    state.polling = true;
    var keepGoing = true;
    var device = state.device;
    asDevice("GET", "/device/v1/requests").then(function (answer) {
      var showing = state.screen === "screen-requests" || state.screen === "screen-removed";
      if (device !== state.device || !showing) { return; }  // enrolling again or forgotten meanwhile: old news
      if (answer.status === 200) {
        $("offline").hidden = true;
        if (state.screen !== "screen-requests") { showRequests(false); return; }  // the clock is right again
        render(Array.isArray(answer.data.requests) ? answer.data.requests : []);
      } else if (answer.status === 401) {
        keepGoing = unauthorised(answer.response);
      } else {
        $("offline").hidden = false;
      }
    }).catch(function () {
      $("offline").hidden = false;
    }).then(function () {
      state.polling = false;
      if (!keepGoing && !state.pollAgain) { return; }
      var delay = state.pollAgain ? 0 : POLL_MS;
      state.pollAgain = false;
      stopPolling();
      state.timer = setTimeout(poll, delay);
    });
  }

  // The server no longer takes this phone's signature: removed, or this phone's clock is wrong.
  // Returns whether to keep polling (only for the clock, which the person can put right).
  function unauthorised(response) {
    var serverTime = Date.parse((response && response.headers.get("Date")) || "");
    var clockWrong = !isNaN(serverTime) && Math.abs(serverTime - Date.now()) > CLOCK_LIMIT_MS;
    var heading = clockWrong ? "This phone's clock is wrong" : $("screen-removed").getAttribute("data-heading");
    $("removed-text").hidden = clockWrong;
    $("clock-text").hidden = !clockWrong;
    if (state.screen !== "screen-removed" || $("screen-heading").textContent !== heading) {
      show("screen-removed", heading);
    }
    // Keep asking while the clock is wrong (a poll under way schedules the next one itself).
    if (clockWrong && !state.polling) { state.timer = setTimeout(poll, POLL_MS); }
    return clockWrong;
  }

  function forget() {
    var subscriptionGone = "serviceWorker" in navigator
      ? navigator.serviceWorker.getRegistration("/app").then(function (registration) {
          return registration && registration.pushManager ? registration.pushManager.getSubscription() : null;
        }).then(function (subscription) { return subscription && subscription.unsubscribe(); }).catch(function () {})
      : Promise.resolve();
    subscriptionGone.then(forgetDevice).then(function () {
      state.device = null;
      $("device-name").value = "";
      showStart();
    }).catch(function () {
      $("removed-text").textContent = "This phone could not be forgotten. Close the app and try again.";
    });
  }

  function when(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) { return ""; }
    var time = date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
    if (date.toDateString() === new Date().toDateString()) { return "Today at " + time; }
    return date.toLocaleDateString("en-GB", { day: "numeric", month: "long" }) + " at " + time;
  }

  function setResult(message, kind) {
    var result = $("result");
    result.textContent = "";
    if (!message) { return; }
    var box = document.createElement("div");
    box.className = "nhsuk-inset-text app-result app-result--" + kind;
    var text = document.createElement("p");
    text.textContent = message;
    box.appendChild(text);
    result.appendChild(box);
  }

  function byId(id) {
    for (var i = 0; i < state.requests.length; i++) { if (state.requests[i].id === id) { return state.requests[i]; } }
    return null;
  }

  function busyWith(card) {  // the person is typing in or using this card: it stays where it is
    return !!card && (card.contains(document.activeElement) || !!card.querySelector("[data-part=number]").value);
  }

  function render(listed) {
    // A poll sent before this phone answered may still list what it answered.
    var requests = listed.filter(function (r) { return !state.answered[r.id]; });
    state.requests = requests;
    var card = $("request-current").firstElementChild;
    var current = byId(state.currentId);
    if (state.currentId && !current) {
      if (!state.answered[state.currentId]) { setResult("This request has ended.", "failure"); }
      state.currentId = null;
      $("request-current").textContent = "";
      card = null;
    }
    var wanted = byId(state.focusId) || (busyWith(card) ? current : null) || requests[0] || null;
    if (wanted && wanted.id !== state.currentId) {
      var focusIt = !!state.focusId || !busyElsewhere();
      if (state.focusId === wanted.id) {
        state.focusId = null;
        if (/request=/.test(location.hash)) { history.replaceState(null, "", location.pathname + location.search); }
      }
      if (!state.seen[wanted.id]) { setResult("", ""); }  // a new request: the last result is old news
      state.currentId = wanted.id;
      card = requestCard(wanted);
      $("request-current").textContent = "";
      $("request-current").appendChild(card);
      if (focusIt) { card.querySelector("[data-part=heading]").focus(); }
    }
    requests.forEach(function (r) { state.seen[r.id] = true; });
    $("no-requests").hidden = requests.length > 0;
    renderOthers(requests.filter(function (r) { return r.id !== state.currentId; }));
    retitle();  // a card gone may have taken an error with it
  }

  function busyElsewhere() {
    var active = document.activeElement;
    return !!active && /^(INPUT|BUTTON|A|TEXTAREA|SELECT)$/.test(active.tagName);
  }

  function renderOthers(others) {
    var key = others.map(function (r) { return r.id; }).join(" ");
    if (key === state.othersKey) { return; }
    state.othersKey = key;
    var list = $("request-others-list");
    list.textContent = "";
    $("request-others").hidden = others.length === 0;
    others.forEach(function (request) {
      var item = document.createElement("li");
      var line = document.createElement("p");
      line.className = "app-request__line";
      line.textContent = request.app + " · " + when(request.created_at) + (request.source_ip ? " · From: " + request.source_ip : "");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "app-link-button";
      button.textContent = "Answer this request";
      button.setAttribute("aria-label", "Answer this request: " + request.app + ", " + when(request.created_at));
      button.addEventListener("click", function () {
        state.focusId = request.id;
        var card = $("request-current").firstElementChild;
        if (card) { card.querySelector("[data-part=number]").value = ""; }
        render(state.requests);
      });
      item.appendChild(line);
      item.appendChild(button);
      list.appendChild(item);
    });
  }

  function requestCard(request) {
    var card = $("request-template").content.firstElementChild.cloneNode(true);
    function part(name) { return card.querySelector("[data-part=" + name + "]"); }
    var suffix = String(request.id).replace(/[^A-Za-z0-9_-]/g, "_");
    part("app").textContent = request.app;
    part("service").textContent = request.service || SERVICE;
    part("time").textContent = when(request.created_at);
    if (request.source_ip) { part("from").textContent = "From: " + request.source_ip; } else { part("from").remove(); }
    if (request.cancelled) {  // Cancel pressed on the sign-in screen: only a report (or Deny) is left
      part("heading").textContent = "Was this you?";
      part("cancelled").hidden = false;
      part("group").hidden = true;
      part("approve").hidden = true;
    }
    var number = part("number");
    number.id = "number-" + suffix;
    part("label").setAttribute("for", number.id);
    part("error").id = "number-error-" + suffix;

    function fieldError(message) {
      part("group").classList.toggle("nhsuk-form-group--error", !!message);
      number.classList.toggle("nhsuk-input--error", !!message);
      part("error-text").textContent = message || "";
      showError(part("error"), "nhsuk-error-message", !!message);
      if (message) {
        number.setAttribute("aria-describedby", part("error").id);
        number.setAttribute("aria-invalid", "true");
      } else {
        number.removeAttribute("aria-describedby");
        number.removeAttribute("aria-invalid");
      }
    }

    function confirming(on) {
      part("form").hidden = on;
      part("report").parentNode.hidden = on;
      part("confirm").hidden = !on;
      (on ? part("confirm-heading") : part("report")).focus();
    }

    part("form").addEventListener("submit", function (event) {
      event.preventDefault();
      var typed = number.value.trim();
      if (!/^[0-9]{2}$/.test(typed)) {
        fieldError(typed ? "The number must be 2 digits, like 42" : "Enter the 2-digit number from the sign-in screen");
        number.focus();
        return;
      }
      fieldError(null);
      answer(request, card, "approve", { number: typed });
    });
    part("deny").addEventListener("click", function () { answer(request, card, "deny", { fraud: false }); });
    part("report").addEventListener("click", function () { confirming(true); });
    part("report-cancel").addEventListener("click", function () { confirming(false); });
    part("report-confirm").addEventListener("click", function () { answer(request, card, "deny", { fraud: true }); });
    return card;
  }

  var ENDED = "This request has ended.";

  function answer(request, card, action, payload) {
    var buttons = card.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    var path = "/device/v1/requests/" + encodeURIComponent(request.id) + "/" + action;
    asDevice("POST", path, payload).then(function (reply) {
      var data = reply.data;
      if (reply.status === 200 && data.status === "approved") {
        return finished(request, "Approved. You can go back to the sign-in screen.", "success");
      }
      if (reply.status === 200 && data.status === "fraud_reported") {
        return finished(request, data.message ||
          "Reported. Your account is blocked until your administrator unlocks it.", "failure");
      }
      if (reply.status === 200) {
        return finished(request, data.message || "Denied. Nobody is signed in with this request.", "success");
      }
      if (reply.status === 422 && data.error === "number_mismatch") {
        return finished(request, "That number did not match. The sign-in was denied. If you were signing in, start again.",
          "failure");
      }
      if (reply.status === 409 || reply.status === 404) { return finished(request, ENDED, "failure"); }
      if (reply.status === 401) { unauthorised(reply.response); return; }
      setResult(data.message || "Something went wrong at " + SERVICE + ". Try again.", "failure");
    }).catch(function () {
      setResult("Could not reach " + SERVICE + ". Check your connection and try again.", "failure");
    }).then(function () {
      // Still shown (an error to try again after): what was typed stays.
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
    });
  }

  function finished(request, message, kind) {
    state.answered[request.id] = true;
    setResult(message, kind);
    render(state.requests.filter(function (r) { return r.id !== request.id; }));
    $("result").focus();
  }

  // --- start ---------------------------------------------------------------------------------

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-js-only]"), function (el) { el.hidden = false; });
    if (!window.crypto || !crypto.subtle || !window.indexedDB || !window.fetch) {
      show("screen-unsupported");
      return;
    }
    $("enrol-form").addEventListener("submit", submitEnrol);
    $("link-form").addEventListener("submit", submitLink);
    $("link-error-link").addEventListener("click", toLinkField);
    $("back-link").addEventListener("click", goBack);
    $("set-up-again").addEventListener("click", showStart);
    $("forget-button").addEventListener("click", forget);
    $("push-on").addEventListener("click", turnOnNotifications);
    window.addEventListener("hashchange", hashChanged);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") { pollNow(); } else { stopPolling(); }
    });
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.addEventListener("message", function (event) {
        var message = event.data || {};
        if (message.type === "open_request" && message.request_id) { state.focusId = message.request_id; }
        pollNow();
      });
    }
    loadDevice().then(function (device) {
      state.device = device || null;
      route();
    }).catch(function () {
      show("screen-unsupported");  // IndexedDB refused (some private browsing modes)
    });
  }

  start();
})();
