// Checkout page: mounts the Payment Element and confirms the PaymentIntent.
// Amounts are never sent from here: the server made the PaymentIntent from the order.
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("checkout-data").textContent);
  var form = document.getElementById("payment-form");
  var button = document.getElementById("pay-button");
  var spinner = button.querySelector(".spinner");
  var paymentError = document.getElementById("payment-error");
  var emailInput = document.getElementById("email");
  var emailError = document.getElementById("email-error");

  if (typeof Stripe === "undefined") {
    showError("The payment form could not be loaded. Please check your connection and reload.");
    return;
  }

  var stripe = Stripe(data.publishableKey);
  var elements = stripe.elements({ clientSecret: data.clientSecret });
  var paymentElement = elements.create("payment");
  var ready = false;
  paymentElement.on("ready", function () {
    ready = true;
    var loading = document.getElementById("payment-loading");
    if (loading) loading.remove();
    button.disabled = false;
  });
  // Stripe.js reports a form that cannot load (e.g. an expired client secret); a blocked
  // network reports nothing, so say so after a while instead of "Loading…" forever.
  paymentElement.on("loaderror", function () {
    showError("The payment form could not be loaded. Please reload the page.");
  });
  window.setTimeout(function () {
    if (!ready) showError("The payment form is taking long to load. Please reload the page.");
  }, 20000);
  paymentElement.mount("#payment-element");

  function setLoading(loading) {
    button.disabled = loading;
    spinner.hidden = !loading;
    button.setAttribute("aria-busy", loading ? "true" : "false");
  }

  function showError(message) {
    paymentError.textContent = message;
    paymentError.hidden = false;
  }

  function clearErrors() {
    paymentError.hidden = true;
    paymentError.textContent = "";
    emailError.hidden = true;
    emailError.textContent = "";
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

  function saveEmail(email) {
    return fetch(data.emailUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": data.csrfToken },
      body: JSON.stringify({ email: email }),
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(
        function (body) { return { ok: response.ok, error: body.error }; },
        function () { return { ok: false, error: data.genericMessage }; }
      );
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    var email = emailInput.value.trim();
    if (!emailInput.checkValidity() || !email) {
      emailError.textContent = "Enter a valid email address, like you@example.com.";
      emailError.hidden = false;
      emailInput.setAttribute("aria-invalid", "true");
      emailInput.focus();
      return;
    }
    setLoading(true);
    saveEmail(email)
      .then(function (saved) {
        if (!saved.ok) {
          emailError.textContent = saved.error || data.genericMessage;
          emailError.hidden = false;
          emailInput.setAttribute("aria-invalid", "true");
          return null;
        }
        return elements.submit().then(function (submitted) {
          if (submitted.error) return submitted;
          return stripe.confirmPayment({
            elements: elements,
            confirmParams: { return_url: data.returnUrl, receipt_email: email },
            redirect: "if_required",
          });
        });
      })
      .then(function (result) {
        if (!result) { setLoading(false); return; }
        if (result.error) {
          showError(messageFor(result.error));
          setLoading(false);
          return;
        }
        // Paid (or processing): the order page asks Stripe and shows the outcome.
        window.location.assign(data.returnUrl);
      })
      .catch(function () {
        showError("Something went wrong. You have not been charged; please try again.");
        setLoading(false);
      });
  });
})();
