// The console's progressive JavaScript. Without it every page still works (reload to refresh);
// with it, the regions marked data-live are fetched again and swapped in place when the event
// stream (/api/v1/stream, authenticated by the session cookie) announces a new event, or every
// few seconds on pages whose data changes without events (data-poll). Nothing is ever built from
// event data: the server renders (and escapes) every fragment.
(function () {
  "use strict";

  // Every event type the stream names a message by (EventType::ALL, every dialect's; a unit
  // test in console/mod.rs keeps the two lists equal).
  var EVENT_TYPES = [
    "ServiceOrderCreationNotification",
    "ServiceOrderStateChangeNotification",
    "ServiceOrderItemStateChangeNotification",
    "ServiceCreationNotification",
    "ServiceAttributeValueChangeNotification",
    "ServiceRemoveNotification",
    "ServiceOrderCreateEvent",
    "ServiceOrderAttributeValueChangeEvent",
    "ServiceOrderStateChangeEvent",
    "ServiceOrderDeleteEvent",
    "ServiceOrderInformationRequiredEvent",
    "ServiceOrderMilestoneEvent",
    "ServiceOrderJeopardyEvent",
    "ServiceOrderItemStateChangeEvent",
    "CancelServiceOrderCreateEvent",
    "CancelServiceOrderStateChangeEvent",
    "CancelServiceOrderInformationRequiredEvent"
  ];
  var body = document.body;
  var status = document.getElementById("live-status");
  if (!document.querySelector("[data-live]") || !window.fetch || !window.DOMParser) {
    return;
  }

  function say(text) {
    if (status) { status.textContent = text; }
  }

  var pending = null;
  var running = false;
  var again = false;

  // Fetches the page again and swaps each live region, keeping open <details> open.
  function refresh() {
    pending = null;
    if (running) { again = true; return; }
    running = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) {
          throw new Error("the page answered " + response.status);
        }
        return response.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (region) {
          var replacement = fresh.getElementById(region.id);
          if (!replacement) { return; }
          var open = [];
          region.querySelectorAll("details[open]").forEach(function (details) {
            if (details.id) { open.push(details.id); }
          });
          region.replaceWith(document.importNode(replacement, true));
          open.forEach(function (id) {
            var details = document.getElementById(id);
            if (details) { details.open = true; }
          });
        });
        body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function (error) { say("refresh failed (" + error.message + "); reload the page"); })
      .then(function () {
        running = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    if (pending === null) { pending = window.setTimeout(refresh, 200); }
  }

  var poll = body.getAttribute("data-poll");
  if (poll) {
    window.setInterval(refresh, Number(poll) || 5000);
    say("on (every " + Math.round((Number(poll) || 5000) / 1000) + " s)");
    return;
  }

  var since = body.getAttribute("data-stream-since");
  if (since === null || !window.EventSource) { return; }
  var orderId = body.getAttribute("data-order-id");
  var source = new EventSource("/api/v1/stream?since=" + encodeURIComponent(since));
  function onEvent(message) {
    if (orderId !== null) {
      var record;
      try { record = JSON.parse(message.data); } catch (ignored) { return; }
      if (!record || record.orderId !== orderId) { return; }
    }
    schedule();
  }
  EVENT_TYPES.forEach(function (type) { source.addEventListener(type, onEvent); });
  source.addEventListener("open", function () {
    say("on");
    body.setAttribute("data-live-ready", "true");
  });
  source.addEventListener("error", function () { say("reconnecting…"); });
})();
