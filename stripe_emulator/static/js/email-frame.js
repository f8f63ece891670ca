/* The Link Authentication Element's frame: one email field.  Its value reaches the page in
 * change events ({value: {email}}); Stripe.js uses it as receipt_email on confirm. */
(function () {
  "use strict";

  var C = window.StripeEmuCard;
  var F = window.StripeEmuFrame;
  var input = document.querySelector('input[name="email"]');
  var errorEl = document.getElementById("Field-linkAuthenticationEmailError");
  var touched = false;
  var lastSent = null;

  function render(all) {
    var r = C.checkEmail(input.value);
    var err = r.error || ((all || touched) && !r.complete ? r.incompleteError : null);
    input.setAttribute("aria-invalid", err ? "true" : "false");
    errorEl.textContent = err ? err.message : "";
    return { result: r, error: err };
  }

  function changed(all) {
    var s = render(all);
    var event = {
      elementType: "linkAuthentication",
      complete: s.result.complete,
      empty: s.result.empty,
      value: { email: input.value.trim() },
    };
    if (s.error) event.error = s.error;
    var serial = JSON.stringify(event);
    if (serial !== lastSent) {
      lastSent = serial;
      F.send({ type: "change", event: event });
    }
    return s;
  }

  function applyOptions() {
    var options = F.state.options;
    var email = (options.defaultValues || {}).email;
    if (typeof email === "string" && !input.value) input.value = email;
    input.disabled = !!options.disabled;
  }

  input.addEventListener("input", function () {
    changed(false);
  });
  input.addEventListener("blur", function () {
    if (input.value) touched = true;
    changed(false);
  });

  F.start({
    init: applyOptions,
    update: applyOptions,
    changed: function () {
      changed(false);
    },
    focus: function () {
      input.focus();
    },
    clear: function () {
      input.value = "";
      touched = false;
    },
    requests: {
      validate: function () {
        var s = changed(true);
        if (s.error) {
          input.focus();
          return { error: s.error };
        }
        return { value: { email: input.value.trim() } };
      },
    },
  });
})();
