/* The 3-D Secure modal used by the hosted Checkout page (Stripe.js has its own copy). */
(function () {
  "use strict";

  // What had focus last: the Pay button loses focus when the page disables it.
  var lastFocused = null;
  document.addEventListener(
    "focusin",
    function (event) {
      if (!event.target.closest || !event.target.closest(".challenge-overlay")) {
        lastFocused = event.target;
      }
    },
    true
  );

  /* Focus `target` now, or once the page enables it again. */
  function restoreFocus(target) {
    if (!target || !target.isConnected || typeof target.focus !== "function") return;
    target.focus();
    if (document.activeElement === target || !target.disabled) return;
    var observer = new MutationObserver(function () {
      if (target.disabled) return;
      observer.disconnect();
      var active = document.activeElement;
      if (!active || active === document.body) target.focus();
    });
    observer.observe(target, { attributes: true, attributeFilter: ["disabled"] });
    setTimeout(function () {
      observer.disconnect();
    }, 30000);
  }

  /* Open `url` in a modal iframe; resolves with {closed, status} when the challenge page
   * posts its result (or the customer closes the modal).  Focus moves into the dialog, Tab
   * stays inside it (the page behind is inert), and focus returns to where it was. */
  function open(url, key) {
    var u = new URL(url, location.href);
    if (u.pathname.indexOf("/3ds/") === 0) {
      // The emulator's own page: load it from wherever this page was served from.
      u = new URL(u.pathname + u.search, location.href);
    }
    if (key) u.searchParams.set("key", key);
    u.searchParams.set("origin", location.origin);
    var challengeOrigin = u.origin;
    var active = document.activeElement;
    var opener = active && active !== document.body ? active : lastFocused;
    return new Promise(function (resolve) {
      var overlay = document.createElement("div");
      overlay.className = "challenge-overlay";
      overlay.setAttribute("role", "dialog");
      overlay.setAttribute("aria-modal", "true");
      overlay.setAttribute("aria-label", "3D Secure authentication");
      overlay.innerHTML =
        '<span class="challenge-overlay__guard" tabindex="0" aria-hidden="true"></span>' +
        '<div class="challenge-overlay__box">' +
        '<iframe name="stripe-challenge-frame" id="stripe-challenge-frame" ' +
        'title="3D Secure authentication"></iframe>' +
        '<button type="button" class="challenge-overlay__close" aria-label="Close">×</button>' +
        "</div>" +
        '<span class="challenge-overlay__guard" tabindex="0" aria-hidden="true"></span>';
      var iframe = overlay.querySelector("iframe");
      var close = overlay.querySelector("button");
      var guards = overlay.querySelectorAll(".challenge-overlay__guard");
      iframe.src = u.toString();
      var madeInert = Array.prototype.filter.call(document.body.children, function (el) {
        return !el.inert;
      });
      madeInert.forEach(function (el) {
        el.inert = true;
      });
      document.body.appendChild(overlay);
      guards[0].addEventListener("focus", function () {
        close.focus();
      });
      guards[1].addEventListener("focus", function () {
        iframe.focus();
      });
      // The dialog itself holds focus until the frame has loaded (its script has run and
      // hears Escape): a key pressed in a frame still loading had no handler and was lost.
      overlay.tabIndex = -1;
      overlay.focus();
      iframe.addEventListener("load", function () {
        iframe.focus();
      });

      function done(result) {
        window.removeEventListener("message", onMessage);
        document.removeEventListener("keydown", onKey);
        overlay.remove();
        madeInert.forEach(function (el) {
          el.inert = false;
        });
        restoreFocus(opener);
        resolve(result);
      }
      function onMessage(event) {
        var data = event.data;
        if (event.source !== iframe.contentWindow || event.origin !== challengeOrigin) return;
        if (!data || data.__stripeEmu !== true) return;
        if (data.type === "3ds-escape") done({ closed: true });
        if (data.type === "3ds-done") done({ closed: false, status: data.status });
      }
      function onKey(event) {
        if (event.key === "Escape") done({ closed: true });
      }
      close.addEventListener("click", function () {
        done({ closed: true });
      });
      window.addEventListener("message", onMessage);
      document.addEventListener("keydown", onKey);
    });
  }

  window.StripeEmuChallenge = { open: open };
})();
