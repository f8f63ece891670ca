/* Inside a card element's iframe (Payment Element, Card Element, or one of the split
 * cardNumber / cardExpiry / cardCvc elements): card inputs, validation, and the API calls that
 * need card data (create the PaymentMethod, confirm the PaymentIntent or SetupIntent), so the
 * card number never leaves the emulator's frames.  Talks to the merchant page (parent) only by
 * postMessage; split elements of one group read each other's fields directly (same origin). */
(function () {
  "use strict";

  var C = window.StripeEmuCard;
  // The postMessage plumbing, appearance, height reports and the key live in frame.js.
  var F = window.StripeEmuFrame;
  var send = F.send;
  var api = F.api;
  var body = document.body;
  var kind = F.kind;
  var group = F.group;
  var options = F.state.options;
  var busy = false;
  var lastSent = null;
  // A Customer Session (payment kind): its client secret, its Payment Element features, the
  // saved cards it lets this element offer, and the choice made ("new" or a card's id).
  var customerSession = null;
  var features = null;
  var saved = [];
  var choice = "new";

  // Which field a split element holds.
  var SPLIT = { cardNumber: "number", cardExpiry: "expiry", cardCvc: "cvc" };
  var SPLIT_KIND = { number: "cardNumber", expiry: "cardExpiry", cvc: "cardCvc" };
  var NAMES =
    kind === "payment"
      ? { number: "number", expiry: "expiry", cvc: "cvc", postal: "postalCode", country: "country" }
      : { number: "cardnumber", expiry: "exp-date", cvc: "cvc", postal: "postal" };
  var ORDER = ["number", "expiry", "cvc", "postal"];
  // The fields this frame shows itself.
  var OWN = SPLIT[kind] ? [SPLIT[kind]] : ORDER;

  function input(field) {
    return NAMES[field] ? document.querySelector('[name="' + NAMES[field] + '"]') : null;
  }
  var inputs = {
    number: input("number"),
    expiry: input("expiry"),
    cvc: input("cvc"),
    postal: input("postal"),
    country: input("country"),
  };
  var touched = {};

  /* The split elements of the same group (same-origin frames of the merchant page). */
  function sibling(field) {
    var wanted = SPLIT_KIND[field];
    var frames = window.parent.frames;
    for (var i = 0; i < frames.length; i++) {
      try {
        var other = frames[i];
        if (other === window) continue;
        var b = other.document.body;
        if (b && b.getAttribute("data-group") === group && b.getAttribute("data-kind") === wanted) {
          return other;
        }
      } catch (e) {
        // Another origin's frame: not ours.
      }
    }
    return null;
  }

  /* The input of `field`, in this frame or (split elements) in its sibling's frame. */
  function fieldInput(field) {
    if (inputs[field]) return inputs[field];
    if (!SPLIT[kind] || !SPLIT_KIND[field]) return null;
    var other = sibling(field);
    return other ? other.document.querySelector('[name="' + NAMES[field] + '"]') : null;
  }

  function fieldValue(field) {
    var el = fieldInput(field);
    return el ? el.value : "";
  }

  function postalShown() {
    if (SPLIT[kind]) return false;
    if (kind === "card") return !options.hidePostalCode;
    var address = (((options.fields || {}).billingDetails || {}).address);
    return address !== "never" && (address || {}).postalCode !== "never";
  }

  function country() {
    return inputs.country ? inputs.country.value : "US";
  }

  /* Checks of `fields` (default: those this frame shows). */
  function checks(fields) {
    fields = fields || OWN;
    var number = fieldValue("number");
    var res = {};
    if (fields.indexOf("number") !== -1) res.number = C.checkNumber(number);
    if (fields.indexOf("expiry") !== -1) res.expiry = C.checkExpiry(fieldValue("expiry"));
    if (fields.indexOf("cvc") !== -1) res.cvc = C.checkCvc(fieldValue("cvc"), number);
    if (fields.indexOf("postal") !== -1 && postalShown()) {
      res.postal = C.checkPostal(inputs.postal.value, country());
    }
    return res;
  }

  /* Errors shown: "can never be valid" at once; "incomplete" after blur, or all on submit. */
  function render(all) {
    var res = checks();
    var first = null;
    ORDER.forEach(function (field) {
      var r = res[field];
      if (!r) return;
      var err = r.error || ((all || touched[field]) && !r.complete ? r.incompleteError : null);
      var el = inputs[field];
      el.setAttribute("aria-invalid", err ? "true" : "false");
      var msg = el.id ? document.getElementById(el.id.replace("Input", "Error")) : null;
      if (msg) msg.textContent = err ? err.message : "";
      if (err && !first) first = err;
    });
    var brand = C.info(fieldValue("number")).brand;
    // The new card's badge (a saved card's badge keeps its own brand).
    var badges = document.querySelectorAll(".brand:not(.saved-brand)");
    Array.prototype.forEach.call(badges, function (b) {
      C.showBrand(b, brand);
    });
    var fields = ORDER.filter(function (f) {
      return res[f];
    });
    return {
      error: first,
      complete: fields.every(function (f) {
        return res[f].complete;
      }),
      empty: fields.every(function (f) {
        return res[f].empty;
      }),
      brand: brand,
    };
  }

  function changeEvent(all) {
    if (usingSaved()) {
      var pm = savedCard(choice);
      return {
        elementType: kind,
        complete: true,
        empty: false,
        collapsed: false,
        value: {
          type: "card",
          payment_method: { id: pm.id, type: "card", card: pm.card, billing_details: pm.billing_details },
        },
      };
    }
    var s = render(all);
    var event = { elementType: kind, complete: s.complete, empty: s.empty };
    if (kind === "payment") {
      event.collapsed = false;
      event.value = { type: "card" };
    } else if (kind === "card") {
      event.brand = s.brand;
      event.value = { postalCode: inputs.postal.value };
    } else if (kind === "cardNumber") {
      event.brand = s.brand;
    }
    if (s.error) event.error = s.error;
    return event;
  }

  function emitChange(all) {
    var event = changeEvent(all);
    var serial = JSON.stringify(event);
    if (serial === lastSent) return event;
    lastSent = serial;
    send({ type: "change", event: event });
    return event;
  }

  function focusNext(field) {
    var i = ORDER.indexOf(field);
    for (var j = i + 1; j < ORDER.length; j++) {
      var next = inputs[ORDER[j]];
      if (next && next.offsetParent !== null) {
        next.focus();
        return;
      }
    }
  }

  // ------------------------------------------------------------------ input handling

  function onInput(field, formatter) {
    var el = inputs[field];
    el.addEventListener("input", function (e) {
      var deleting = e.inputType && e.inputType.indexOf("delete") === 0;
      var atEnd = el.selectionStart === el.value.length;
      var formatted = formatter(el.value, deleting);
      if (formatted !== el.value) {
        el.value = formatted;
        if (atEnd) el.setSelectionRange(formatted.length, formatted.length);
      }
      emitChange(false);
      var r = checks()[field];
      if (!deleting && atEnd && r && r.complete && field !== "postal" && !SPLIT[kind]) {
        focusNext(field);
      }
    });
    el.addEventListener("blur", function () {
      if (el.value) touched[field] = true;
      emitChange(false);
    });
  }

  if (inputs.number) {
    onInput("number", function (v) {
      return C.formatNumber(v);
    });
  }
  if (inputs.expiry) {
    onInput("expiry", function (v, deleting) {
      return C.formatExpiry(v, deleting);
    });
  }
  if (inputs.cvc) {
    onInput("cvc", function (v) {
      return C.formatCvc(v, fieldValue("number"));
    });
  }
  if (inputs.postal) {
    onInput("postal", function (v) {
      return v.slice(0, 10);
    });
  }
  if (inputs.country) {
    inputs.country.addEventListener("change", function () {
      var us = inputs.country.value === "US";
      document.getElementById("Field-postalCodeLabel").textContent = us ? "ZIP" : "Postal code";
      inputs.postal.placeholder = us ? "12345" : "";
      emitChange(false);
    });
  }

  /* The Card Element's `style` option: {base: {color, fontSize, fontFamily}, invalid: {color}}. */
  function applyCardStyle(style) {
    if (!style) return;
    var root = document.documentElement.style;
    var base = style.base || {};
    var map = { color: "--colorText", fontSize: "--fontSizeBase", fontFamily: "--fontFamily" };
    Object.keys(map).forEach(function (k) {
      if (typeof base[k] === "string" && /^[^;{}<>]*$/.test(base[k])) {
        root.setProperty(map[k], base[k]);
      }
    });
    if (style.invalid && typeof style.invalid.color === "string") {
      root.setProperty("--colorDanger", style.invalid.color);
    }
  }

  var countryDefaulted = false;

  /* Derived state of F.state.options (merged by frame.js) and of being busy. */
  function applyOptions() {
    body.classList.toggle("hide-postal", !postalShown());
    var disabled = !!options.disabled || busy;
    Object.keys(inputs).forEach(function (f) {
      if (inputs[f]) inputs[f].disabled = disabled;
    });
    Array.prototype.forEach.call(
      document.querySelectorAll("#saved-methods input, #saved-methods button, #save-card"),
      function (el) {
        el.disabled = disabled;
      }
    );
    applyCardStyle(options.style);
    var defaults = ((options.defaultValues || {}).billingDetails || {}).address || {};
    if (inputs.country && defaults.country && !countryDefaulted) {
      countryDefaulted = true;
      inputs.country.value = String(defaults.country).toUpperCase();
      inputs.country.dispatchEvent(new Event("change"));
    }
    if (inputs.postal && defaults.postal_code && !inputs.postal.value) {
      inputs.postal.value = defaults.postal_code;
    }
    if (inputs.postal && options.value && options.value.postalCode && !inputs.postal.value) {
      inputs.postal.value = options.value.postalCode;
    }
    showMandate();
  }

  /* Saving the card for later (setup, subscription, setupFutureUsage): say so, like Stripe. */
  function showMandate() {
    var mandate = document.getElementById("mandate");
    if (!mandate) return;
    var g = options.__group || {};
    var saving = choice === "new" && saveBox && saveBox.checked && !saveOption.hidden;
    mandate.hidden = !(g.intentType === "setup" || g.mode === "subscription" ||
      g.setupFutureUsage || saving);
  }

  function setBusy(value) {
    busy = value;
    applyOptions();
  }

  function billingDetails(given) {
    var bd = JSON.parse(JSON.stringify(given || {}));
    bd.address = bd.address || {};
    if (postalShown() && inputs.postal && inputs.postal.value && !bd.address.postal_code) {
      bd.address.postal_code = inputs.postal.value.trim();
    }
    if (inputs.country && !bd.address.country) bd.address.country = inputs.country.value;
    if (!Object.keys(bd.address).length) delete bd.address;
    return bd;
  }

  function createPaymentMethod(given, allowRedisplay) {
    var exp = C.parseExpiry(fieldValue("expiry"));
    var params = {
      type: "card",
      allow_redisplay: allowRedisplay || undefined,
      card: {
        number: C.digits(fieldValue("number")),
        exp_month: exp.month,
        exp_year: exp.year,
        cvc: C.digits(fieldValue("cvc")),
      },
    };
    var bd = billingDetails(given);
    if (Object.keys(bd).length) params.billing_details = bd;
    return api("POST", "/v1/payment_methods", params);
  }

  /* Show every error of this frame; answers the first (or null). */
  function validateOwn() {
    if (usingSaved()) return null;
    var event = emitChange(true);
    if (event.error) return event.error;
    if (!event.complete) return C.error("incomplete_" + (SPLIT[kind] || "number"));
    return null;
  }
  // The cardNumber frame validates its cardExpiry / cardCvc siblings through this.
  window.__stripeEmuField = { validate: validateOwn };

  function validated() {
    var err = validateOwn();
    if (kind === "cardNumber") {
      ["expiry", "cvc"].forEach(function (field) {
        var other = sibling(field);
        var e = other && other.__stripeEmuField
          ? other.__stripeEmuField.validate()
          : C.error("incomplete_" + field);
        err = err || e;
      });
    } else if (SPLIT[kind]) {
      err = err || {
        type: "invalid_request_error",
        message: "Pass the cardNumber Element to confirm or create a PaymentMethod.",
      };
    }
    if (err) return err;
    if (!F.state.key) {
      return { type: "invalid_request_error", message: "The element is not initialised yet." };
    }
    return null;
  }

  var INTENT = {
    payment: { path: "/v1/payment_intents/", param: "payment_intent", key: "paymentIntent" },
    setup: { path: "/v1/setup_intents/", param: "setup_intent", key: "setupIntent" },
  };

  /* A confirm error carries the intent as it is now (Stripe.js does the same). */
  function withIntent(error, info, id, clientSecret) {
    if (!error[info.param] || typeof error[info.param] !== "object") {
      return api("GET", info.path + encodeURIComponent(id), { client_secret: clientSecret }).then(
        function (intent) {
          if (intent && !intent.error) error[info.param] = intent;
          return error;
        }
      );
    }
    return Promise.resolve(error);
  }

  function confirm(message) {
    var err = validated();
    if (err) return Promise.resolve({ error: err });
    var clientSecret = String(message.clientSecret || "");
    var id = clientSecret.split("_secret_")[0];
    var info = INTENT[message.intentType === "setup" ? "setup" : "payment"];
    // A saved card pays as it is; a new one is created (allow_redisplay "always" when the
    // customer ticked "Save this card").
    var savedId = usingSaved() ? choice : null;
    var saving = !savedId && savingNewCard();
    setBusy(true);
    var pending = savedId
      ? Promise.resolve({ id: savedId })
      : createPaymentMethod(message.billingDetails, saving ? "always" : null);
    return pending
      .then(function (pm) {
        if (pm.error) return { error: pm.error };
        var params = { client_secret: clientSecret, payment_method: pm.id };
        var cp = message.confirmParams || {};
        Object.keys(cp).forEach(function (k) {
          params[k] = cp[k];
        });
        var usage = saving && info === INTENT.payment ? saveUsage() : null;
        if (usage) params.setup_future_usage = usage;
        return api("POST", info.path + encodeURIComponent(id) + "/confirm", params).then(
          function (intent) {
            if (intent.error) {
              return withIntent(intent.error, info, id, clientSecret).then(function (e) {
                return { error: e };
              });
            }
            var out = {};
            out[info.key] = intent;
            return out;
          }
        );
      })
      .then(
        function (result) {
          setBusy(false);
          return result;
        },
        function () {
          setBusy(false);
          return { error: { type: "api_error", message: "Something went wrong." } };
        }
      );
  }

  // ------------------------------------------------------------------ saved cards

  var savedBox = document.getElementById("saved-methods");
  var savedList = document.getElementById("saved-list");
  var savedStatus = document.getElementById("saved-status");
  var newCard = document.getElementById("new-card");
  var choiceNew = document.getElementById("choice-new");
  var saveOption = document.getElementById("save-option");
  var saveBox = document.getElementById("save-card");

  function usingSaved() {
    return choice !== "new" && !!savedCard(choice);
  }

  function savedCard(id) {
    return saved.filter(function (pm) {
      return pm.id === id;
    })[0] || null;
  }

  function enabled(name) {
    return !!features && features[name] === "enabled";
  }

  function cardLabel(pm) {
    return C.savedCardLabel(pm.card || {});
  }

  function savingNewCard() {
    return choice === "new" && enabled("payment_method_save") && !!saveBox && saveBox.checked;
  }

  /* The setup_future_usage a ticked "Save this card" confirms a PaymentIntent with: the
   * session's payment_method_save_usage, else the intent's own (a deferred group's
   * setupFutureUsage), else off_session. */
  function saveUsage() {
    if (features.payment_method_save_usage) return features.payment_method_save_usage;
    var g = options.__group || {};
    return g.setupFutureUsage ? null : "off_session";
  }

  /* Fetch the Customer Session's features and cards; answers an error, or null. */
  function loadSaved() {
    if (!customerSession) return Promise.resolve(null);
    return api("GET", "/v1/elements/sessions", { customer_session_client_secret: customerSession })
      .then(
        function (body) {
          if (!body || body.error) {
            return (body && body.error) || { type: "api_error", message: "Unexpected response." };
          }
          features = body.features;
          var g = options.__group || {};
          if (features.payment_method_save_usage && g.setupFutureUsage) {
            return {
              type: "invalid_request_error",
              code: "integration_error",
              message:
                "IntegrationError: the Customer Session sets payment_method_save_usage and " +
                "the Elements group sets setupFutureUsage; set only one of them.",
            };
          }
          saved = body.payment_methods || [];
          choice = saved.length ? saved[0].id : "new";
          renderSaved();
          return null;
        },
        function () {
          return {
            type: "api_connection_error",
            message: "We could not connect to the payment service. Please check your connection.",
          };
        }
      );
  }

  function renderSaved() {
    if (!savedBox) return;
    savedList.textContent = "";
    saved.forEach(function (pm) {
      var item = document.createElement("li");
      item.className = "saved-option";
      var radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "payment-choice";
      radio.id = "choice-" + pm.id;
      radio.value = pm.id;
      var label = document.createElement("label");
      label.htmlFor = radio.id;
      var badge = document.createElement("span");
      badge.className = "brand saved-brand";
      badge.setAttribute("data-brand", (pm.card || {}).brand || "unknown");
      badge.setAttribute("aria-hidden", "true");
      var brand = (pm.card || {}).brand;
      badge.textContent = brand === "mastercard" ? "MC" : brand || "";
      var text = document.createElement("span");
      text.textContent = cardLabel(pm);
      label.appendChild(badge);
      label.appendChild(text);
      item.appendChild(radio);
      item.appendChild(label);
      if (enabled("payment_method_remove")) {
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "remove";
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", "Remove " + cardLabel(pm));
        remove.addEventListener("click", function () {
          removeCard(pm);
        });
        item.appendChild(remove);
      }
      savedList.appendChild(item);
    });
    savedBox.hidden = !saved.length;
    if (choice !== "new" && !savedCard(choice)) choice = saved.length ? saved[0].id : "new";
    var checked = choice === "new" ? choiceNew : document.getElementById("choice-" + choice);
    if (checked) checked.checked = true;
    applyChoice();
    applyOptions();
  }

  function applyChoice() {
    if (newCard) newCard.hidden = usingSaved();
    if (saveOption) saveOption.hidden = !(choice === "new" && enabled("payment_method_save"));
    showMandate();
    F.reportHeight();
  }

  function removeCard(pm) {
    var label = cardLabel(pm);
    setBusy(true);
    api(
      "POST",
      "/v1/elements/payment_methods/" + encodeURIComponent(pm.id) + "/detach",
      { customer_session_client_secret: customerSession }
    ).then(function (res) {
      setBusy(false);
      if (res.error) {
        savedStatus.textContent = "We could not remove " + label + ". Please try again.";
        return;
      }
      saved = saved.filter(function (other) {
        return other.id !== pm.id;
      });
      savedStatus.textContent = label + " removed.";
      renderSaved();
      var next = choice === "new" ? choiceNew : document.getElementById("choice-" + choice);
      if (next && saved.length) next.focus();
      else if (inputs.number) inputs.number.focus();
      emitChange(false);
    });
  }

  if (savedBox) {
    savedBox.addEventListener("change", function (e) {
      if (e.target.name !== "payment-choice") return;
      choice = e.target.value;
      applyChoice();
      emitChange(false);
    });
  }
  if (saveBox) {
    saveBox.addEventListener("change", function () {
      showMandate();
      F.reportHeight();
    });
  }

  // ------------------------------------------------------------------ messages from the page

  F.start({
    // Ready once a Customer Session's saved cards are shown (a page enables Pay on
    // "ready"); a session that cannot be read is the element's loaderror.
    init: function (m) {
      applyOptions();
      if (kind === "payment" && typeof m.customerSessionClientSecret === "string") {
        customerSession = m.customerSessionClientSecret;
      }
      return loadSaved();
    },
    update: applyOptions,
    changed: function () {
      emitChange(false);
    },
    focus: function () {
      var radio = usingSaved() ? document.getElementById("choice-" + choice) : null;
      (radio || inputs[OWN[0]]).focus();
    },
    clear: function () {
      ORDER.forEach(function (f) {
        if (inputs[f]) inputs[f].value = "";
      });
      touched = {};
    },
    requests: {
      validate: function () {
        var err = validated();
        return err ? { error: err } : {};
      },
      createPaymentMethod: function (m) {
        var err = validated();
        if (err) return { error: err };
        return createPaymentMethod(m.billingDetails).then(function (pm) {
          return pm.error ? { error: pm.error } : { paymentMethod: pm };
        });
      },
      confirm: function (m) {
        if (busy) {
          return {
            error: { type: "invalid_request_error", message: "A payment is already in progress." },
          };
        }
        return confirm(m);
      },
    },
  });
})();
