/* The 3-D Secure modal used by the hosted Checkout page (Stripe.js has its own copy). */
(function () {
  "use strict";

  /* Open `url` in a modal iframe; resolves with {closed, status} when the challenge page
   * posts its result (or the customer closes the modal). */
  function open(url, key) {
    var u = new URL(url, location.href);
    if (key) u.searchParams.set("key", key);
    u.searchParams.set("origin", location.origin);
    var challengeOrigin = u.origin;
    return new Promise(function (resolve) {
      var overlay = document.createElement("div");
      overlay.className = "challenge-overlay";
      overlay.setAttribute("role", "dialog");
      overlay.setAttribute("aria-modal", "true");
      overlay.setAttribute("aria-label", "3D Secure authentication");
      overlay.innerHTML =
        '<div class="challenge-overlay__box">' +
        '<iframe name="stripe-challenge-frame" id="stripe-challenge-frame" ' +
        'title="3D Secure authentication"></iframe>' +
        '<button type="button" class="challenge-overlay__close" aria-label="Close">×</button>' +
        "</div>";
      var iframe = overlay.querySelector("iframe");
      iframe.src = u.toString();
      document.body.appendChild(overlay);

      function done(result) {
        window.removeEventListener("message", onMessage);
        document.removeEventListener("keydown", onKey);
        overlay.remove();
        resolve(result);
      }
      function onMessage(event) {
        var data = event.data;
        if (event.source !== iframe.contentWindow || event.origin !== challengeOrigin) return;
        if (!data || data.__stripeEmu !== true || data.type !== "3ds-done") return;
        done({ closed: false, status: data.status });
      }
      function onKey(event) {
        if (event.key === "Escape") done({ closed: true });
      }
      overlay.querySelector("button").addEventListener("click", function () {
        done({ closed: true });
      });
      window.addEventListener("message", onMessage);
      document.addEventListener("keydown", onKey);
    });
  }

  window.StripeEmuChallenge = { open: open };
})();
