/* The Customer Portal page: shows/hides its panels and acts through the key-less
 * /v1/portal_pages/<session> endpoints (update the card, cancel, renew, switch plan).
 * Every button stays disabled until this script has bound it. */
(function () {
  "use strict";

  var C = window.StripeEmuCard;
  var sessionId = document.body.getAttribute("data-session");
  var base = "/v1/portal_pages/" + encodeURIComponent(sessionId);
  var $ = function (id) {
    return document.getElementById(id);
  };

  var OFFLINE = { message: "We could not reach the server. Please try again." };

  function call(path, params) {
    return C.request("POST", base + path, params || {}, { offline: OFFLINE });
  }

  /* Reload the page with the outcome's message (the server renders it). */
  function done(body) {
    var url = new URL(location.href);
    url.searchParams.set("notice", body.notice || "");
    location.assign(url.toString());
  }

  function pageError(message) {
    var box = $("portal-error");
    box.textContent = message;
    box.hidden = false;
    box.focus();
  }

  function failure(res) {
    return (res.body && res.body.error && res.body.error.message) || "Something went wrong.";
  }

  function busy(button, value) {
    button.disabled = value;
    button.classList.toggle("is-loading", value);
    button.setAttribute("aria-busy", value ? "true" : "false");
  }

  function toggle(button) {
    var panel = $(button.getAttribute("aria-controls"));
    var open = panel.hidden;
    panel.hidden = !open;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      var first = panel.querySelector("input:not([disabled]), button:not([disabled])");
      if (first) first.focus();
    }
  }

  // ------------------------------------------------------------------ plans

  Array.prototype.forEach.call(document.querySelectorAll(".plan"), function (plan) {
    var subId = plan.getAttribute("data-subscription");
    var path = "/subscriptions/" + encodeURIComponent(subId);
    plan.querySelectorAll('[data-action="show-switch"], [data-action="show-cancel"]').forEach(
      function (button) {
        button.addEventListener("click", function () {
          toggle(button);
        });
      }
    );
    var cancel = plan.querySelector('[data-action="cancel"]');
    if (cancel) {
      cancel.addEventListener("click", function () {
        busy(cancel, true);
        call(path + "/cancel").then(function (res) {
          if (res.status === 200) return done(res.body);
          busy(cancel, false);
          pageError(failure(res));
        });
      });
    }
    var renew = plan.querySelector('[data-action="renew"]');
    if (renew) {
      renew.addEventListener("click", function () {
        busy(renew, true);
        call(path + "/renew").then(function (res) {
          if (res.status === 200) return done(res.body);
          busy(renew, false);
          pageError(failure(res));
        });
      });
    }
    var form = plan.querySelector('form[data-action="switch"]');
    if (form) {
      var submit = form.querySelector('button[type="submit"]');
      var error = form.querySelector(".field-error");
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var chosen = form.querySelector('input[name="price"]:checked');
        if (!chosen) {
          error.textContent = "Choose a plan.";
          form.querySelector('input[name="price"]').focus();
          return;
        }
        error.textContent = "";
        busy(submit, true);
        call(path + "/update", { price: chosen.value }).then(function (res) {
          if (res.status === 200) return done(res.body);
          busy(submit, false);
          error.textContent = failure(res);
          chosen.focus();
        });
      });
    }
  });

  // ------------------------------------------------------------------ card

  var cardForm = $("card-form");
  if (cardForm) {
    var fields = { number: $("cardNumber"), expiry: $("cardExpiry"), cvc: $("cardCvc") };
    var saveButton = $("save-card");
    var cardError = $("card-error");
    var showCard = document.querySelector('[data-action="show-card"]');
    var touched = {};

    showCard.addEventListener("click", function () {
      toggle(showCard);
    });
    cardForm.querySelector('[data-action="hide-card"]').addEventListener("click", function () {
      cardForm.hidden = true;
      showCard.setAttribute("aria-expanded", "false");
      showCard.focus();
    });

    var checks = C.cardChecks(fields);

    function validate(all) {
      var first = null;
      var message = "";
      ["number", "expiry", "cvc"].forEach(function (name) {
        var r = checks[name]();
        var err = r.error || ((all || touched[name]) && !r.complete ? r.incompleteError : null);
        fields[name].setAttribute("aria-invalid", err ? "true" : "false");
        if (err && !first) {
          first = name;
          message = err.message;
        }
      });
      cardError.textContent = message;
      C.showBrand($("card-brand"), C.info(fields.number.value).brand);
      return first;
    }

    function wire(name, formatter) {
      var el = fields[name];
      el.addEventListener("input", function (e) {
        var deleting = e.inputType && e.inputType.indexOf("delete") === 0;
        var formatted = formatter(el.value, deleting);
        if (formatted !== el.value) el.value = formatted;
        validate(false);
      });
      el.addEventListener("blur", function () {
        if (el.value) touched[name] = true;
        validate(false);
      });
    }
    wire("number", C.formatNumber);
    wire("expiry", C.formatExpiry);
    wire("cvc", function (v) {
      return C.formatCvc(v, fields.number.value);
    });

    function setBusy(value) {
      busy(saveButton, value);
      Object.keys(fields).forEach(function (f) {
        fields[f].disabled = value;
      });
    }

    function fail(message) {
      setBusy(false);
      cardError.textContent = message;
      fields.number.setAttribute("aria-invalid", "true");
      fields.number.focus();
    }

    cardForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var bad = validate(true);
      if (bad) {
        fields[bad].focus();
        return;
      }
      var exp = C.parseExpiry(fields.expiry.value);
      setBusy(true);
      call("/payment_method", {
        card: {
          number: C.digits(fields.number.value),
          exp_month: exp.month,
          exp_year: exp.year,
          cvc: C.digits(fields.cvc.value),
        },
      }).then(function (res) {
        var body = res.body || {};
        if (res.status === 200 && body.status === "succeeded") return done(body);
        if (res.status === 200 && body.status === "requires_action" && body.redirect_url) {
          return window.StripeEmuChallenge.open(body.redirect_url, null).then(function (outcome) {
            if (outcome.closed) {
              return fail(
                "We are unable to authenticate your payment method. Please choose a " +
                  "different payment method and try again."
              );
            }
            return call("/payment_method/complete", { setup_intent: body.setup_intent }).then(
              function (after) {
                if (after.status === 200) return done(after.body);
                fail(failure(after));
              }
            );
          });
        }
        fail(failure(res));
      });
    });
  }

  // Ready: every control works now.
  document.querySelectorAll("button[disabled]").forEach(function (button) {
    button.disabled = false;
  });
  var notice = $("portal-notice");
  if (notice) notice.focus();
})();
