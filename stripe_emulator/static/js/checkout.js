/* The hosted Checkout page: loads the session from /v1/payment_pages/<id>, shows the order
 * summary, collects email + card, and confirms through /v1/payment_pages/<id>/confirm. */
(function () {
  "use strict";

  var C = window.StripeEmuCard;
  var body = document.body;
  var sessionId = body.getAttribute("data-session");
  var defaultKey = body.getAttribute("data-default-key");
  var business = body.getAttribute("data-business");
  var base = "/v1/payment_pages/" + encodeURIComponent(sessionId);
  var session = null;

  var $ = function (id) {
    return document.getElementById(id);
  };
  var form = $("payment-form");
  var fields = {
    email: $("email"),
    number: $("cardNumber"),
    expiry: $("cardExpiry"),
    cvc: $("cardCvc"),
    name: $("billingName"),
  };
  var button = $("submit-button");
  var touched = {};
  var shippingInputs = {
    name: $("shippingName"),
    country: $("shippingCountry"),
    line1: $("shippingAddressLine1"),
    line2: $("shippingAddressLine2"),
    city: $("shippingLocality"),
    state: $("shippingAdministrativeArea"),
    postal_code: $("shippingPostalCode"),
  };

  // ------------------------------------------------------------------ API

  var OFFLINE = {
    type: "api_connection_error",
    message: "We could not reach the payment service. Please try again.",
  };

  function call(method, path, params, key) {
    return C.request(method, path, params, { key: key, offline: OFFLINE });
  }

  // ------------------------------------------------------------------ rendering

  function money(amount) {
    return C.formatAmount(amount || 0, session.currency);
  }

  function interval(recurring) {
    if (!recurring) return "";
    var n = recurring.interval_count || 1;
    return n === 1 ? "per " + recurring.interval : "every " + n + " " + recurring.interval + "s";
  }

  function productName(item) {
    var product = item.price && item.price.product;
    if (product && typeof product === "object" && product.name) return product.name;
    return item.description || "Item";
  }

  function showStatus(text, kind) {
    var el = $("status-message");
    el.hidden = false;
    el.className = "notice" + (kind ? " notice--" + kind : "");
    el.textContent = "";
    var p = document.createElement("p");
    p.textContent = text;
    el.appendChild(p);
    return el;
  }

  function renderSummary() {
    var items = (session.line_items && session.line_items.data) || [];
    var subscription = session.mode === "subscription";
    var recurring = null;
    items.forEach(function (it) {
      if (it.price && it.price.recurring && !recurring) recurring = it.price.recurring;
    });
    $("summary-label").textContent = subscription
      ? "Subscribe to " + (items.length ? productName(items[0]) : business)
      : "Pay " + business;
    $("summary-total").textContent = money(session.amount_total);
    if (subscription && recurring) {
      $("summary-interval").hidden = false;
      $("summary-interval").textContent = interval(recurring);
    }
    var list = $("line-items");
    list.textContent = "";
    items.forEach(function (it) {
      var li = document.createElement("li");
      li.className = "line-item";
      var left = document.createElement("div");
      var name = document.createElement("p");
      name.className = "line-item__name";
      name.textContent = productName(it);
      left.appendChild(name);
      var meta = document.createElement("p");
      meta.className = "line-item__meta muted";
      var unit = it.price && it.price.unit_amount != null ? it.price.unit_amount : null;
      var metaText = "Qty " + (it.quantity || 1);
      if (unit !== null && (it.quantity || 1) > 1) metaText += " · " + money(unit) + " each";
      if (it.price && it.price.recurring) {
        metaText += " · Billed " + interval(it.price.recurring).replace("per ", "") + "ly";
        metaText = metaText.replace("dayly", "daily");
      }
      meta.textContent = metaText;
      left.appendChild(meta);
      var amount = document.createElement("p");
      amount.className = "line-item__amount";
      amount.textContent = money(it.amount_total != null ? it.amount_total : it.amount_subtotal);
      li.appendChild(left);
      li.appendChild(amount);
      list.appendChild(li);
    });
    $("subtotal").textContent = money(
      session.amount_subtotal != null ? session.amount_subtotal : session.amount_total
    );
    $("total").textContent = money(session.amount_total);
    renderShippingCost();
    $("total-label").textContent = subscription ? "Total due today" : "Total due";
    $("totals").hidden = false;
    $("summary-body").setAttribute("aria-busy", "false");
  }

  // ------------------------------------------------------------------ shipping

  function shippingOptions() {
    return session.shipping_options || [];
  }

  /* The page API expands each option's rate; its id either way. */
  function rateId(option) {
    var rate = option.shipping_rate;
    return rate && typeof rate === "object" ? rate.id : rate;
  }

  function rateOf(option) {
    var rate = option.shipping_rate;
    return rate && typeof rate === "object" ? rate : {};
  }

  function chosenOption() {
    var checked = document.querySelector('input[name="shippingRate"]:checked');
    var id = checked ? checked.value : null;
    var options = shippingOptions();
    for (var i = 0; i < options.length; i++) {
      if (rateId(options[i]) === id) return options[i];
    }
    return options[0] || null;
  }

  function rateName(option) {
    return rateOf(option).display_name || "Shipping";
  }

  function estimate(option) {
    var est = rateOf(option).delivery_estimate;
    if (!est || !est.minimum || !est.maximum) return "";
    var unit = est.maximum.unit === "business_day" ? "business days" : est.maximum.unit + "s";
    return est.minimum.value === est.maximum.value
      ? est.maximum.value + " " + unit
      : est.minimum.value + "–" + est.maximum.value + " " + unit;
  }

  /* The summary's Shipping row and total follow the chosen option. */
  function renderShippingCost() {
    var option = chosenOption();
    if (!option) return;
    var subtotal = session.amount_subtotal != null ? session.amount_subtotal : 0;
    $("shipping-row").hidden = false;
    $("shipping-label").textContent = "Shipping · " + rateName(option);
    $("shipping-amount").textContent = option.shipping_amount
      ? money(option.shipping_amount)
      : "Free";
    $("total").textContent = money(subtotal + option.shipping_amount);
    $("summary-total").textContent = money(subtotal + option.shipping_amount);
  }

  function renderShipping() {
    var collection = session.shipping_address_collection;
    if (collection) {
      var allowed = collection.allowed_countries || [];
      Array.prototype.slice.call(shippingInputs.country.options).forEach(function (opt) {
        if (allowed.indexOf(opt.value) === -1) opt.remove();
      });
      $("shipping-section").hidden = false;
    }
    var options = shippingOptions();
    if (!options.length) return;
    var box = $("shipping-options");
    options.forEach(function (option, i) {
      var label = document.createElement("label");
      label.className = "shipping-option";
      var input = document.createElement("input");
      input.type = "radio";
      input.name = "shippingRate";
      input.value = rateId(option);
      input.id = "shipping-rate-" + rateId(option);
      input.checked = session.shipping_cost
        ? session.shipping_cost.shipping_rate === rateId(option)
        : i === 0;
      input.addEventListener("change", renderShippingCost);
      var name = document.createElement("span");
      name.textContent = rateName(option);
      var when = estimate(option);
      if (when) {
        var small = document.createElement("span");
        small.className = "muted";
        small.textContent = " · " + when;
        name.appendChild(small);
      }
      var price = document.createElement("span");
      price.className = "shipping-option__price";
      price.textContent = option.shipping_amount ? money(option.shipping_amount) : "Free";
      label.appendChild(input);
      label.appendChild(name);
      label.appendChild(price);
      box.appendChild(label);
    });
    $("shipping-options-section").hidden = false;
    renderShippingCost();
  }

  var SHIPPING_REQUIRED = [
    ["name", "Enter the recipient's full name."],
    ["line1", "Enter the street address."],
    ["city", "Enter the city."],
    ["postal_code", "Enter the postal code."],
  ];

  /* The first missing shipping field (focused, with its message), or null. */
  function validateShipping() {
    if (!session || !session.shipping_address_collection) return null;
    var first = null;
    SHIPPING_REQUIRED.forEach(function (pair) {
      var el = shippingInputs[pair[0]];
      var missing = !el.value.trim();
      el.setAttribute("aria-invalid", missing ? "true" : "false");
      if (missing && !first) first = pair;
    });
    $("shipping-error").textContent = first ? first[1] : "";
    if (first) shippingInputs[first[0]].focus();
    return first;
  }

  function shippingParams() {
    if (!session.shipping_address_collection) return {};
    var v = function (k) { return shippingInputs[k].value.trim(); };
    var out = {
      shipping: {
        name: v("name"),
        address: {
          line1: v("line1"), line2: v("line2"), city: v("city"), state: v("state"),
          postal_code: v("postal_code"), country: v("country"),
        },
      },
    };
    var option = chosenOption();
    if (option) out.shipping_rate = rateId(option);
    return out;
  }

  /* An email Stripe already knows for this session (customer_email, or the Customer's):
   * shown read-only, as on Stripe's page. */
  function fixedEmail() {
    var customer = session.customer;
    return session.customer_email || (customer && customer.email) || null;
  }

  function renderForm() {
    var email = fixedEmail() || (session.customer_details || {}).email;
    if (fixedEmail()) {
      fields.email.value = fixedEmail();
      fields.email.readOnly = true;
      fields.email.classList.add("is-readonly");
    } else if (email) {
      fields.email.value = email;
    }
    $("submit-label").textContent = session.mode === "subscription" ? "Subscribe" : "Pay";
    if (session.cancel_url && safeUrl(session.cancel_url)) {
      var back = $("back-link");
      back.href = session.cancel_url;
      back.hidden = false;
    }
    form.hidden = false;
  }

  function safeUrl(url) {
    try {
      var u = new URL(url, location.href);
      return u.protocol === "http:" || u.protocol === "https:" ? u.toString() : null;
    } catch (e) {
      return null;
    }
  }

  function successUrl() {
    var url = String(session.success_url || "").split("{CHECKOUT_SESSION_ID}").join(session.id);
    return safeUrl(url);
  }

  // ------------------------------------------------------------------ validation

  var CHECKS = C.cardChecks(fields);
  CHECKS.email = function () {
    return C.checkEmail(fields.email.value);
  };
  CHECKS.name = function () {
    var v = fields.name.value.trim();
    return v
      ? { complete: true, empty: false }
      : { complete: false, empty: true, incompleteError: C.error("incomplete_name") };
  };
  var ERROR_BOX = { email: "email-error", number: "card-error", expiry: "card-error",
    cvc: "card-error", name: "name-error" };

  // ------------------------------------------------------------------ saved cards

  var choice = "new"; // "new" or a saved card's id
  var offersSave = false;
  function usingSaved() {
    return choice !== "new";
  }

  function renderSaved(saved) {
    var cards = saved.saved_cards || [];
    var list = $("saved-card-list");
    list.textContent = "";
    cards.forEach(function (card) {
      var row = document.createElement("div");
      row.className = "saved-card";
      var radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "paymentChoice";
      radio.id = "saved-" + card.id;
      radio.value = card.id;
      var label = document.createElement("label");
      label.htmlFor = radio.id;
      label.textContent = C.savedCardLabel(card);
      row.appendChild(radio);
      row.appendChild(label);
      list.appendChild(row);
    });
    $("saved-cards").hidden = !cards.length;
    offersSave = !!saved.offers_save;
    $("save-card-option").hidden = !offersSave;
    choice = cards.length ? cards[0].id : "new";
    var checked = cards.length ? $("saved-" + choice) : $("use-new-card");
    checked.checked = true;
    applyChoice();
  }

  function applyChoice() {
    $("new-card-fields").hidden = usingSaved();
  }

  $("saved-cards").addEventListener("change", function (e) {
    if (e.target.name !== "paymentChoice") return;
    choice = e.target.value;
    applyChoice();
  });

  /* Show errors; `all` on submit. Answers the first field with an error (or null). */
  function validate(all) {
    var shown = {};
    var first = null;
    var checked = usingSaved() ? ["email"] : ["email", "number", "expiry", "cvc", "name"];
    checked.forEach(function (f) {
      var r = CHECKS[f]();
      var err = r.error || ((all || touched[f]) && !r.complete ? r.incompleteError : null);
      fields[f].setAttribute("aria-invalid", err ? "true" : "false");
      var box = ERROR_BOX[f];
      if (err && !shown[box]) shown[box] = err.message;
      if (err && !first) first = f;
    });
    ["email-error", "card-error", "name-error"].forEach(function (box) {
      $(box).textContent = shown[box] || "";
    });
    C.showBrand($("card-brand"), C.info(fields.number.value).brand);
    return first;
  }

  function wire(field, formatter) {
    var el = fields[field];
    el.addEventListener("input", function (e) {
      if (formatter) {
        var deleting = e.inputType && e.inputType.indexOf("delete") === 0;
        var atEnd = el.selectionStart === el.value.length;
        var formatted = formatter(el.value, deleting);
        if (formatted !== el.value) {
          el.value = formatted;
          if (atEnd) el.setSelectionRange(formatted.length, formatted.length);
        }
      }
      validate(false);
    });
    el.addEventListener("blur", function () {
      if (el.value) touched[field] = true;
      validate(false);
    });
  }
  wire("email");
  wire("number", C.formatNumber);
  wire("expiry", C.formatExpiry);
  wire("cvc", function (v) {
    return C.formatCvc(v, fields.number.value);
  });
  wire("name");

  // ------------------------------------------------------------------ submit

  function setBusy(value) {
    button.disabled = value;
    button.classList.toggle("is-loading", value);
    button.setAttribute("aria-busy", value ? "true" : "false");
    Object.keys(fields).forEach(function (f) {
      if (!(f === "email" && session && fixedEmail())) fields[f].disabled = value;
    });
    Array.prototype.forEach.call(
      document.querySelectorAll("#saved-cards input, #saveCard"),
      function (el) {
        el.disabled = value;
      }
    );
  }

  function formError(message) {
    var el = $("form-error");
    el.hidden = !message;
    el.textContent = message || "";
  }

  /* After 3-D Secure the session completes in the background; wait for it briefly. */
  function waitForComplete(tries) {
    return call("GET", base).then(function (res) {
      if (res.body && res.body.status === "complete") return true;
      if (tries <= 0) return false;
      return new Promise(function (r) {
        setTimeout(r, 250);
      }).then(function () {
        return waitForComplete(tries - 1);
      });
    });
  }

  function go(url) {
    var target = safeUrl(url);
    if (target) location.assign(target);
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    formError(null);
    var bad = validate(true);
    if (bad) {
      fields[bad].focus();
      return;
    }
    if (validateShipping()) return;
    setBusy(true);
    var params = { email: fields.email.value.trim() };
    if (usingSaved()) {
      params.payment_method = choice;
    } else {
      var exp = C.parseExpiry(fields.expiry.value);
      params.billing_name = fields.name.value.trim();
      params.card = {
        number: C.digits(fields.number.value),
        exp_month: exp.month,
        exp_year: exp.year,
        cvc: C.digits(fields.cvc.value),
      };
      if (offersSave && $("saveCard").checked) params.save_payment_method = "true";
    }
    var extra = shippingParams();
    Object.keys(extra).forEach(function (k) { params[k] = extra[k]; });
    call("POST", base + "/confirm", params).then(function (res) {
      var data = res.body || {};
      if (res.status === 200 && data.status === "complete") {
        go(data.redirect_url || successUrl());
        return;
      }
      if (res.status === 200 && data.status === "requires_action" && data.redirect_url) {
        return window.StripeEmuChallenge.open(data.redirect_url, null).then(function (outcome) {
          if (!outcome.closed && ["succeeded", "processing"].indexOf(outcome.status) !== -1) {
            return waitForComplete(20).then(function () {
              go(successUrl());
            });
          }
          if (outcome.closed && data.payment_intent && data.client_secret) {
            // Closing the modal abandons the authentication, as on Stripe.
            call("POST", "/v1/payment_intents/" + encodeURIComponent(data.payment_intent) +
              "/authenticate", { client_secret: data.client_secret, result: "fail" }, defaultKey);
          }
          formError(
            "We are unable to authenticate your payment method. Please choose a different " +
              "payment method and try again."
          );
          setBusy(false);
        });
      }
      var err = data.error || {};
      formError(err.message || "Something went wrong. Please try again.");
      setBusy(false);
    });
  });

  // ------------------------------------------------------------------ load

  call("GET", base).then(function (res) {
    if (res.status !== 200 || !res.body || res.body.error) {
      $("summary-label").textContent = "Checkout unavailable";
      showStatus(
        res.status === 404
          ? "This checkout page does not exist. Please return to the shop and try again."
          : (res.body && res.body.error && res.body.error.message) ||
              "This checkout page could not be loaded.",
        "error"
      );
      return;
    }
    session = res.body;
    renderSummary();
    if (session.status === "complete") {
      var box = showStatus("This payment has already been completed. Thank you!", "success");
      var url = successUrl();
      if (url) {
        var a = document.createElement("a");
        a.href = url;
        a.textContent = "Continue";
        a.className = "button button--primary";
        box.appendChild(a);
      }
      return;
    }
    if (session.status === "expired") {
      var ebox = showStatus(
        "This checkout session has expired. Please return to the shop and start again.",
        "error"
      );
      if (session.cancel_url && safeUrl(session.cancel_url)) {
        var back = document.createElement("a");
        back.href = session.cancel_url;
        back.textContent = "← Back";
        back.className = "button button--secondary";
        ebox.appendChild(back);
      }
      return;
    }
    // The form shows once the customer's saved cards are known (none for a guest).
    return call("GET", base + "/saved_payment_methods").then(function (saved) {
      renderForm();
      renderShipping();
      renderSaved(saved.status === 200 && saved.body ? saved.body : {});
    });
  });
})();
