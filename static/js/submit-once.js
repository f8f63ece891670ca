// Forms that send the shopper to Stripe Checkout (data-submit-once): see
// templates/hosted_checkout/submit_once.html for why.
(function () {
  var forms = document.querySelectorAll("form[data-submit-once]");
  function buttons() { return document.querySelectorAll("form[data-submit-once] button[type=submit]"); }
  forms.forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (document.documentElement.dataset.submitting) { event.preventDefault(); return; }
      document.documentElement.dataset.submitting = "1";
      buttons().forEach(function (button) {
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
      });
    });
  });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    delete document.documentElement.dataset.submitting;
    buttons().forEach(function (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    });
  });
})();
