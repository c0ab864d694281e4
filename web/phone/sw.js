// The phone app's service worker (scope /app): shows sign-in requests that arrive by Web Push and
// brings the app forward when one is tapped. It caches nothing: every answer comes from the server.
"use strict";

var APP_PATH = "/app";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

// Open windows of the app itself (the scope "/app" also covers other pages, such as /app-passwords).
function appWindows() {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    return windows.filter(function (client) { return new URL(client.url).pathname === APP_PATH; });
  });
}

self.addEventListener("push", function (event) {
  var payload = {};
  try { payload = event.data ? event.data.json() : {}; } catch (e) { payload = {}; }
  var requestId = payload.request_id || "";
  var title = payload.title || "Sign-in request";
  var body = (payload.app ? payload.app + " · " : "") + "tap to approve or deny";
  event.waitUntil(Promise.all([
    self.registration.showNotification(title, {
      body: body,
      tag: requestId || "sign-in-request",
      data: { request_id: requestId },
      icon: APP_PATH + "/icon-192.png",
      requireInteraction: true
    }),
    // An open app asks the server at once instead of at its next poll.
    appWindows().then(function (windows) {
      windows.forEach(function (client) { client.postMessage({ type: "sign_in_request", request_id: requestId }); });
    })
  ]));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var requestId = (event.notification.data && event.notification.data.request_id) || "";
  event.waitUntil(appWindows().then(function (windows) {
    if (windows.length) {
      windows[0].postMessage({ type: "open_request", request_id: requestId });
      return windows[0].focus();
    }
    return self.clients.openWindow(APP_PATH + (requestId ? "#request=" + encodeURIComponent(requestId) : ""));
  }));
});
