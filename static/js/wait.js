// Waiting pages (an order being confirmed, a membership activating or changing): ask the
// page's small JSON status endpoint in the background, with backoff, instead of reloading
// the page (a reload every few seconds loses a screen reader's place). When the state
// changes, the page's main content is fetched once and swapped in, and the change is
// announced in a live region. After data-wait-seconds the page stops asking, says so and
// offers "Check again". Without JavaScript the page has a plain "Check again" link.
(function () {
  "use strict";
  var FIRST_DELAY = 1000;
  var MAX_DELAY = 10000;
  var live = null;

  function announce(text) {
    if (!live) { return; }
    // Cleared first, so the same words said twice are announced twice.
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function focusHeading() {
    var heading = document.querySelector("main h1");
    if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
  }

  function refresh(message) {
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("main");
        var main = document.querySelector("main");
        if (!fresh || !main) { window.location.reload(); return; }
        var hadFocus = main.contains(document.activeElement);
        main.innerHTML = fresh.innerHTML;
        // A paid order empties the cart: the header's count must say so too.
        var counts = doc.querySelectorAll(".cart-count");
        document.querySelectorAll(".cart-count").forEach(function (el, i) {
          if (counts[i]) { el.textContent = counts[i].textContent; }
        });
        var freshLink = doc.querySelector(".cart-link");
        var link = document.querySelector(".cart-link");
        if (freshLink && link) { link.setAttribute("aria-label", freshLink.getAttribute("aria-label")); }
        document.title = doc.title;
        announce(message);
        // The focused control is gone: put focus at the top of the new content.
        if (hadFocus) { focusHeading(); }
        init();
      })
      .catch(function () { window.location.reload(); });
  }

  function watch(box) {
    var url = box.getAttribute("data-wait-url");
    var state = box.getAttribute("data-wait-state");
    var limit = (parseFloat(box.getAttribute("data-wait-seconds")) || 120) * 1000;
    var timeout = box.querySelector("[data-wait-timeout]");
    var again = box.querySelector("[data-wait-again]");
    var fallback = box.querySelector("[data-wait-fallback]");
    var delay = FIRST_DELAY;
    var started = Date.now();
    if (fallback) { fallback.hidden = true; }

    function giveUp() {
      timeout.hidden = false;
      announce(timeout.textContent.replace("Check again", "").trim());
    }

    function schedule() {
      if (Date.now() - started + delay > limit) { giveUp(); return; }
      window.setTimeout(check, delay);
      delay = Math.min(delay * 1.5, MAX_DELAY);
    }

    function check() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data && data.state && data.state !== state) { refresh(data.message || ""); }
          else { schedule(); }
        })
        .catch(schedule);
    }

    again.addEventListener("click", function () {
      timeout.hidden = true;
      focusHeading(); // the button is hidden: keep focus in the page, not on <body>
      announce("Checking again…");
      delay = FIRST_DELAY;
      started = Date.now();
      check();
    });
    schedule();
  }

  function init() {
    var boxes = document.querySelectorAll("[data-wait-url]");
    if (boxes.length && !live) {
      live = document.createElement("div");
      live.className = "visually-hidden";
      live.setAttribute("role", "status");
      live.setAttribute("aria-live", "polite");
      live.setAttribute("data-testid", "wait-announcer");
      document.body.appendChild(live);
    }
    boxes.forEach(watch);
  }

  init();
})();
