// Checkout page: Address Element (shipping), rate picker, Payment Element with a deferred
// PaymentIntent (Stripe's "collect payment details before creating an Intent" flow).
// Amounts shown here come from the server; on Pay the server recomputes the order and
// answers 409 when the total shown is stale, so the browser never decides what is charged.
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("checkout-data").textContent);
  var form = document.getElementById("payment-form");
  var button = document.getElementById("pay-button");
  var spinner = button.querySelector(".spinner");
  var paymentError = document.getElementById("payment-error");
  var paymentErrorText = document.getElementById("payment-error-text");
  var reviewButton = document.getElementById("review-button");
  var emailInput = document.getElementById("email");
  var emailError = document.getElementById("email-error");
  var addressError = document.getElementById("address-error");
  var rateError = document.getElementById("rate-error");
  var rateInputs = Array.prototype.slice.call(form.querySelectorAll('input[name="shipping_rate"]'));

  if (typeof Stripe === "undefined") {
    showError("The payment form could not be loaded. Please check your connection and reload.");
    return;
  }

  function selectedRate() {
    var checked = rateInputs.filter(function (input) { return input.checked; })[0];
    if (!checked) return null;
    return data.rates.filter(function (rate) { return rate.code === checked.value; })[0] || null;
  }

  var stripe = Stripe(data.publishableKey);
  var elementsOptions = {
    mode: "payment",
    amount: selectedRate() ? selectedRate().total : data.amount,
    currency: data.currency,
  };
  // Signed in: a Customer Session lets the Payment Element show their saved cards and
  // offer "Save this card for next time" (guests never get one).
  if (data.customerSessionClientSecret) {
    elementsOptions.customerSessionClientSecret = data.customerSessionClientSecret;
  }
  var elements = stripe.elements(elementsOptions);
  var addressOptions = { mode: "shipping", allowedCountries: data.countries };
  if (data.address) addressOptions.defaultValues = data.address;
  var addressElement = elements.create("address", addressOptions);
  var paymentElement = elements.create("payment");

  var address = { complete: false, value: data.address };
  var returnUrl = data.returnUrl;
  var loaded = { address: false, payment: false };
  var SLOW_LOAD = "The payment form is taking long to load. Please reload the page.";

  function onReady(which, placeholder) {
    return function () {
      loaded[which] = true;
      var loading = document.getElementById(placeholder);
      if (loading) loading.remove();
      if (loaded.address && loaded.payment) {
        button.disabled = false;
        // Loaded after all: the "taking long" note below no longer holds.
        if (paymentErrorText.textContent === SLOW_LOAD) paymentError.hidden = true;
      }
    };
  }
  addressElement.on("ready", onReady("address", "address-loading"));
  paymentElement.on("ready", onReady("payment", "payment-loading"));
  addressElement.on("change", function (event) {
    address = { complete: event.complete, value: event.value };
    if (event.complete) addressError.hidden = true;
  });
  // Stripe.js reports a form that cannot load; a blocked network reports nothing, so say
  // so after a while instead of "Loading…" forever.
  paymentElement.on("loaderror", function () {
    showError("The payment form could not be loaded. Please reload the page.");
  });
  window.setTimeout(function () {
    if (!loaded.address || !loaded.payment) {
      showError(SLOW_LOAD);
    }
  }, 20000);
  addressElement.mount("#address-element");
  paymentElement.mount("#payment-element");

  // The rate picker: the totals on the page and the Payment Element's amount follow it.
  function showRate(rate) {
    rateError.hidden = true;
    [
      ["shipping-name", rate.name],
      ["shipping-amount", rate.price],
      ["checkout-total", rate.totalLabel],
      ["pay-amount", rate.totalLabel],
      ["summary-toggle-total", rate.totalLabel],
    ].forEach(function (pair) {
      var el = document.getElementById(pair[0]);
      if (el) el.textContent = pair[1];
    });
  }
  rateInputs.forEach(function (input) {
    input.addEventListener("change", function () {
      var rate = selectedRate();
      if (!rate) return;
      showRate(rate);
      elements.update({ amount: rate.total });
    });
  });
  // A rate picked before this script ran (the radios work as soon as they are drawn) had no
  // handler to update the totals: show the checked one's now (the Elements group above was
  // made with its amount).
  if (selectedRate()) showRate(selectedRate());

  reviewButton.addEventListener("click", function () {
    window.location.reload();
  });

  // Busy: aria-disabled, not disabled, so the focused button keeps focus (a disabled one
  // drops it to <body>); the submit handler ignores presses meanwhile.
  function setLoading(loading) {
    button.setAttribute("aria-disabled", loading ? "true" : "false");
    spinner.hidden = !loading;
    button.setAttribute("aria-busy", loading ? "true" : "false");
  }

  function showError(message, review) {
    paymentErrorText.textContent = message;
    reviewButton.hidden = !review;
    paymentError.hidden = false;
    paymentError.focus();
  }

  function fieldError(box, message, focus) {
    box.textContent = message;
    box.hidden = false;
    if (focus) focus.focus();
  }

  function clearErrors() {
    [paymentError, emailError, addressError, rateError].forEach(function (box) {
      box.hidden = true;
    });
    paymentErrorText.textContent = "";
    emailInput.removeAttribute("aria-invalid");
  }

  // Plain words for what Stripe.js reports; the mapping comes from the server.
  function messageFor(error) {
    if (error.type === "card_error" || error.type === "validation_error") {
      return (
        data.declineMessages[error.decline_code] ||
        data.declineMessages[error.code] ||
        error.message ||
        data.genericMessage
      );
    }
    if (error.code === "payment_intent_authentication_failure") {
      return "We could not authenticate your payment. Try again or use another card.";
    }
    return error.message || data.genericMessage;
  }

  // Pay pressed: the server recomputes the order and makes (or updates) the PaymentIntent.
  function startPayment(email, rate) {
    var value = address.value || {};
    var where = value.address || {};
    return fetch(data.payUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": data.csrfToken },
      credentials: "same-origin",
      body: JSON.stringify({
        email: email,
        shipping_rate: rate.code,
        total: rate.total,
        name: value.name || "",
        line1: where.line1 || "",
        line2: where.line2 || "",
        city: where.city || "",
        state: where.state || "",
        postal_code: where.postal_code || "",
        country: where.country || "",
      }),
    }).then(function (response) {
      return response.json().then(
        function (body) { return { status: response.status, body: body }; },
        function () {
          var message = response.status === 429
            ? "Too many attempts. Please wait a moment and try again."
            : data.genericMessage;
          return { status: response.status, body: { error: message } };
        }
      );
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (button.getAttribute("aria-disabled") === "true") return; // already paying
    clearErrors();
    var email = emailInput.value.trim();
    if (!emailInput.checkValidity() || !email) {
      emailInput.setAttribute("aria-invalid", "true");
      fieldError(emailError, "Enter a valid email address, like you@example.com.", emailInput);
      return;
    }
    var rate = selectedRate();
    if (!rate) {
      fieldError(rateError, "Choose a shipping method.", rateInputs[0]);
      return;
    }
    setLoading(true);
    elements
      .submit()
      .then(function (submitted) {
        if (submitted.error) return { error: submitted.error };
        if (!address.complete) {
          fieldError(addressError, "Enter the full shipping address.");
          return { handled: true };
        }
        return startPayment(email, rate).then(function (answer) {
          var body = answer.body || {};
          if (answer.status === 200 && body.redirect) {
            window.location.assign(body.redirect);
            return { handled: true, leaving: true };
          }
          if (answer.status !== 200 || !body.clientSecret) {
            if (body.field === "email") {
              emailInput.setAttribute("aria-invalid", "true");
              fieldError(emailError, body.error, emailInput);
            } else if (body.field === "shipping_rate") {
              fieldError(rateError, body.error, rateInputs[0]);
            } else if (body.field) {
              fieldError(addressError, body.error);
            } else {
              showError(body.error || data.genericMessage, answer.status === 409 && body.reload);
            }
            return { handled: true };
          }
          returnUrl = body.returnUrl || data.returnUrl;
          return stripe.confirmPayment({
            elements: elements,
            clientSecret: body.clientSecret,
            confirmParams: { return_url: returnUrl },
            redirect: "if_required",
          });
        });
      })
      .then(function (result) {
        if (result.leaving) return;
        if (result.handled) { setLoading(false); return; }
        if (result.error) {
          showError(messageFor(result.error));
          setLoading(false);
          return;
        }
        // Paid (or processing): the order page asks Stripe and shows the outcome.
        window.location.assign(returnUrl);
      })
      .catch(function () {
        showError("Something went wrong. You have not been charged; please try again.");
        setLoading(false);
      });
  });
})();
