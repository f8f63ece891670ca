/* The 3-D Secure challenge page.  Embedded in Stripe.js's modal it reports the outcome to the
 * opener page by postMessage; opened top-level (redirect flow) it sends the browser on to the
 * return_url with payment_intent, payment_intent_client_secret and redirect_status. */
(function () {
  "use strict";

  var C = window.StripeEmuCard;
  var body = document.body;
  var piId = body.getAttribute("data-pi");
  // A PaymentIntent (pi_...) or a SetupIntent (seti_...).
  var intentPath = piId.indexOf("seti_") === 0 ? "/v1/setup_intents/" : "/v1/payment_intents/";
  var query = new URLSearchParams(location.search);
  var clientSecret = query.get("client_secret") || "";
  var key = query.get("key") || body.getAttribute("data-default-key");
  var parentOrigin = query.get("origin");
  var embedded = window.parent !== window && !!parentOrigin;
  var returnUrl = query.get("return_url");
  var amountEl = document.getElementById("challenge-amount");
  var messageEl = document.getElementById("challenge-message");
  var buttons = Array.prototype.slice.call(document.querySelectorAll("[data-result]"));

  function api(method, path, params) {
    var url = path;
    var init = { method: method, headers: { Authorization: "Bearer " + key } };
    if (method === "GET") {
      url += "?" + C.formEncode(params);
    } else {
      init.headers["Content-Type"] = "application/x-www-form-urlencoded";
      init.body = C.formEncode(params);
    }
    return fetch(url, init).then(function (resp) {
      return resp.json();
    });
  }

  function show(text, isError) {
    messageEl.hidden = false;
    messageEl.textContent = text;
    messageEl.classList.toggle("notice--error", !!isError);
  }

  function safeUrl(url) {
    try {
      var u = new URL(url, location.href);
      return u.protocol === "http:" || u.protocol === "https:" ? u : null;
    } catch (e) {
      return null;
    }
  }

  function redirectStatus(pi) {
    if (pi.status === "succeeded" || pi.status === "requires_capture") return "succeeded";
    if (pi.status === "processing") return "processing";
    return "failed";
  }

  function finish(pi) {
    if (embedded) {
      window.parent.postMessage(
        { __stripeEmu: true, type: "3ds-done", status: pi.status, payment_intent: pi.id },
        parentOrigin
      );
      return;
    }
    var target = returnUrl && safeUrl(returnUrl);
    if (!target) {
      show(
        pi.status === "succeeded" || pi.status === "processing"
          ? "Authentication complete. You can close this window."
          : "Authentication failed. You can close this window.",
        pi.status === "requires_payment_method"
      );
      return;
    }
    var param = pi.object === "setup_intent" ? "setup_intent" : "payment_intent";
    target.searchParams.set(param, pi.id);
    target.searchParams.set(param + "_client_secret", clientSecret);
    target.searchParams.set("redirect_status", redirectStatus(pi));
    location.assign(target.toString());
  }

  function setBusy(value) {
    buttons.forEach(function (b) {
      b.disabled = value;
    });
  }

  var current = null;

  // In the modal, Escape closes it (the page cannot see keys pressed inside this frame).
  if (embedded) {
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        window.parent.postMessage({ __stripeEmu: true, type: "3ds-escape" }, parentOrigin);
      }
    });
  }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      setBusy(true);
      button.classList.add("is-loading");
      api("POST", intentPath + encodeURIComponent(piId) + "/authenticate", {
        client_secret: clientSecret,
        result: button.getAttribute("data-result"),
      })
        .then(function (pi) {
          button.classList.remove("is-loading");
          if (pi.error) {
            // Already authenticated (e.g. a second tab): report the intent as it is now.
            if (current && current.status !== "requires_action") return finish(current);
            show(pi.error.message || "Authentication could not be recorded.", true);
            setBusy(false);
            return;
          }
          finish(pi);
        })
        .catch(function () {
          button.classList.remove("is-loading");
          show("Could not reach the payment service. Please try again.", true);
          setBusy(false);
        });
    });
  });

  // Show the amount (and learn the return_url for the redirect flow).
  if (!clientSecret) {
    show("This authentication link is missing its client_secret.", true);
    setBusy(true);
    return;
  }
  api("GET", intentPath + encodeURIComponent(piId), { client_secret: clientSecret })
    .then(function (pi) {
      if (pi.error) {
        amountEl.textContent = "—";
        setBusy(false);
        return;
      }
      current = pi;
      setBusy(false);
      // Setting a card up charges nothing.
      amountEl.textContent =
        pi.object === "setup_intent" ? "No charge (saving your card)" : C.formatAmount(pi.amount, pi.currency);
      var na = pi.next_action && pi.next_action.redirect_to_url;
      if (!returnUrl && na && na.return_url) returnUrl = na.return_url;
      if (pi.status !== "requires_action") {
        show("This payment no longer needs authentication (status: " + pi.status + ").");
        document.getElementById("challenge-actions").hidden = true;
        var link = document.createElement("button");
        link.type = "button";
        link.className = "button button--primary";
        link.textContent = "Continue";
        link.addEventListener("click", function () {
          finish(pi);
        });
        messageEl.appendChild(document.createElement("br"));
        messageEl.appendChild(link);
      }
    })
    .catch(function () {
      amountEl.textContent = "—";
      setBusy(false);
    });
})();
