/* Card field helpers shared by the element iframes and the hosted Checkout page:
 * brand detection, input formatting and Stripe.js-style validation messages. */
(function () {
  "use strict";

  var BRANDS = [
    { brand: "amex", re: /^3[47]/, lengths: [15], cvc: 4, gaps: [4, 10] },
    { brand: "diners", re: /^(36|38|30[0-5])/, lengths: [14], cvc: 3, gaps: [4, 10] },
    { brand: "discover", re: /^(6011|65|64[4-9])/, lengths: [16], cvc: 3, gaps: [4, 8, 12] },
    { brand: "jcb", re: /^35/, lengths: [16], cvc: 3, gaps: [4, 8, 12] },
    { brand: "unionpay", re: /^62/, lengths: [16, 17, 18, 19], cvc: 3, gaps: [4, 8, 12] },
    {
      brand: "mastercard",
      re: /^(5[1-5]|222[1-9]|22[3-9]|2[3-6]|27[01]|2720)/,
      lengths: [16],
      cvc: 3,
      gaps: [4, 8, 12],
    },
    // Stripe.js completes a Visa at 16 digits: a 13-digit prefix of a 16-digit test card
    // (4000 0025 0000 3) can pass the Luhn check and must not count as a whole number.
    { brand: "visa", re: /^4/, lengths: [16, 19], cvc: 3, gaps: [4, 8, 12] },
  ];
  var UNKNOWN = { brand: "unknown", re: /^/, lengths: [16], cvc: 3, gaps: [4, 8, 12] };

  var MESSAGES = {
    incomplete_number: "Your card number is incomplete.",
    invalid_number: "Your card number is invalid.",
    incomplete_expiry: "Your card's expiration date is incomplete.",
    invalid_expiry_month: "Your card's expiration month is invalid.",
    invalid_expiry_month_past: "Your card's expiration date is in the past.",
    invalid_expiry_year_past: "Your card's expiration year is in the past.",
    invalid_expiry_year: "Your card's expiration year is invalid.",
    incomplete_cvc: "Your card's security code is incomplete.",
    incomplete_zip: "Your postal code is incomplete.",
    incomplete_email: "Your email address is incomplete.",
    invalid_email: "Your email address is invalid.",
    incomplete_name: "Your name is incomplete.",
  };

  function digits(value) {
    return String(value || "").replace(/\D/g, "");
  }

  function info(number) {
    var d = digits(number);
    for (var i = 0; i < BRANDS.length; i++) {
      if (BRANDS[i].re.test(d)) return BRANDS[i];
    }
    return UNKNOWN;
  }

  function maxLength(number) {
    var lengths = info(number).lengths;
    return lengths[lengths.length - 1];
  }

  function luhn(d) {
    var sum = 0;
    for (var i = 0; i < d.length; i++) {
      var n = +d.charAt(d.length - 1 - i);
      if (i % 2 === 1) {
        n *= 2;
        if (n > 9) n -= 9;
      }
      sum += n;
    }
    return d.length > 0 && sum % 10 === 0;
  }

  function formatNumber(value) {
    var d = digits(value);
    var card = info(d);
    d = d.slice(0, maxLength(d));
    var out = "";
    for (var i = 0; i < d.length; i++) {
      if (card.gaps.indexOf(i) !== -1) out += " ";
      out += d.charAt(i);
    }
    return out;
  }

  /* "1" -> "1", "2" -> "02 / ", "123" -> "12 / 3" (like Stripe's MM / YY field). */
  function formatExpiry(value, deleting) {
    var d = digits(value).slice(0, 4);
    if (d.length === 1 && d > "1") d = "0" + d;
    if (d.length < 2) return d;
    if (d.length === 2) return deleting ? d : d + " / ";
    return d.slice(0, 2) + " / " + d.slice(2);
  }

  function formatCvc(value, number) {
    return digits(value).slice(0, info(number).cvc);
  }

  function error(code) {
    return { type: "validation_error", code: code, message: MESSAGES[code] };
  }

  /* Each validator answers {empty, complete, error, incompleteError}: `error` is shown while
   * typing (the value can never become valid), `incompleteError` only on blur or submit. */
  function checkNumber(value) {
    var d = digits(value);
    var card = info(d);
    var res = { empty: d.length === 0, complete: false, error: null, brand: card.brand };
    if (d.length >= card.lengths[0] && luhn(d) && card.lengths.indexOf(d.length) !== -1) {
      res.complete = true;
    } else if (d.length >= maxLength(d) || (card.lengths.indexOf(d.length) !== -1 && d.length >= 14)) {
      // Like Stripe.js: a full-length number that fails the Luhn check (4242 4242 4242 4241)
      // is invalid at once, not "incomplete".
      res.error = error("invalid_number");
    } else {
      res.incompleteError = error("incomplete_number");
    }
    return res;
  }

  function parseExpiry(value) {
    var d = digits(value);
    if (d.length !== 4) return null;
    return { month: +d.slice(0, 2), year: 2000 + +d.slice(2) };
  }

  function checkExpiry(value, now) {
    now = now || new Date();
    var d = digits(value);
    var res = { empty: d.length === 0, complete: false, error: null };
    var month = d.length >= 2 ? +d.slice(0, 2) : null;
    if (month !== null && (month < 1 || month > 12)) {
      res.error = error("invalid_expiry_month");
      return res;
    }
    var exp = parseExpiry(d);
    if (!exp) {
      res.incompleteError = error("incomplete_expiry");
      return res;
    }
    var year = now.getFullYear();
    if (exp.year < year) res.error = error("invalid_expiry_year_past");
    else if (exp.year === year && exp.month < now.getMonth() + 1)
      res.error = error("invalid_expiry_month_past");
    else if (exp.year > year + 50) res.error = error("invalid_expiry_year");
    else res.complete = true;
    return res;
  }

  function checkCvc(value, number) {
    var d = digits(value);
    var need = info(number).cvc;
    var res = { empty: d.length === 0, complete: false, error: null };
    if (d.length >= need) res.complete = true;
    else res.incompleteError = error("incomplete_cvc");
    return res;
  }

  /* Postal codes are required where Stripe asks for them by default (US, CA, GB). */
  function checkPostal(value, country) {
    var v = String(value || "").trim();
    var res = { empty: v.length === 0, complete: false, error: null };
    var required = !country || ["US", "CA", "GB"].indexOf(country) !== -1;
    var ok = v.length > 0;
    if (country === "US" || !country) ok = /^\d{5}(-?\d{4})?$/.test(v);
    else if (country === "CA") ok = /^[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d$/.test(v);
    else if (country === "GB") ok = v.replace(/\s/g, "").length >= 5;
    if (ok || (!required && v.length === 0)) res.complete = true;
    else res.incompleteError = error("incomplete_zip");
    return res;
  }

  function checkEmail(value) {
    var v = String(value || "").trim();
    var res = { empty: v.length === 0, complete: false, error: null };
    if (/^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/.test(v)) res.complete = true;
    else if (v.length === 0) res.incompleteError = error("incomplete_email");
    else res.incompleteError = error("invalid_email");
    return res;
  }

  /* Money in the currency's minor unit -> "$12.50", "¥1,200" (JPY has no minor unit). */
  function formatAmount(amount, currency, locale) {
    currency = String(currency || "usd").toUpperCase();
    try {
      var fmt = new Intl.NumberFormat(locale || undefined, {
        style: "currency",
        currency: currency,
      });
      var fraction = fmt.resolvedOptions().maximumFractionDigits;
      return fmt.format(amount / Math.pow(10, fraction));
    } catch (e) {
      return (amount / 100).toFixed(2) + " " + currency;
    }
  }

  /* Stripe's form encoding: {a: {b: [1]}} -> "a[b][0]=1". */
  function formEncode(data) {
    var parts = [];
    function walk(prefix, value) {
      if (value === undefined || value === null) return;
      if (Array.isArray(value)) {
        value.forEach(function (v, i) {
          walk(prefix + "[" + i + "]", v);
        });
      } else if (typeof value === "object") {
        Object.keys(value).forEach(function (k) {
          walk(prefix ? prefix + "[" + k + "]" : k, value[k]);
        });
      } else {
        parts.push(encodeURIComponent(prefix) + "=" + encodeURIComponent(String(value)));
      }
    }
    walk("", data);
    return parts.join("&");
  }

  var BRAND_NAMES = {
    visa: "Visa",
    mastercard: "Mastercard",
    amex: "American Express",
    discover: "Discover",
    diners: "Diners Club",
    jcb: "JCB",
    unionpay: "UnionPay",
  };

  /* A saved card as Stripe's pages name it: "Visa •••• 4242, expires 12/34". */
  function savedCardLabel(card) {
    var month = ("0" + card.exp_month).slice(-2);
    return (BRAND_NAMES[card.brand] || "Card") + " \u2022\u2022\u2022\u2022 " + card.last4 +
      ", expires " + month + "/" + String(card.exp_year).slice(-2);
  }

  /* One form-encoded request of the emulator's own pages (hosted Checkout, the Customer
   * Portal): answers {status, body}, body the JSON answer or {} when it is not JSON, and
   * {status: 0, body: {error: offline}} when the request never reached the server.
   * options.key: a Bearer key; params (if any) go in the body. */
  function request(method, path, params, options) {
    var init = { method: method, headers: {}, credentials: "omit" };
    if (options.key) init.headers.Authorization = "Bearer " + options.key;
    if (params) {
      init.headers["Content-Type"] = "application/x-www-form-urlencoded";
      init.body = formEncode(params);
    }
    return fetch(path, init).then(
      function (resp) {
        return resp
          .json()
          .catch(function () {
            return {};
          })
          .then(function (json) {
            return { status: resp.status, body: json };
          });
      },
      function () {
        return { status: 0, body: { error: Object.assign({}, options.offline) } };
      }
    );
  }

  /* The checks of the card fields (templates/_card_fields.html) as each page calls them:
   * {number, expiry, cvc}, each answering {complete, empty, error, incompleteError}. */
  function cardChecks(fields) {
    return {
      number: function () {
        return checkNumber(fields.number.value);
      },
      expiry: function () {
        return checkExpiry(fields.expiry.value);
      },
      cvc: function () {
        return checkCvc(fields.cvc.value, fields.number.value);
      },
    };
  }

  /* A card brand badge: data-brand picks its picture; the text is for when there is none. */
  function showBrand(badge, brand) {
    badge.setAttribute("data-brand", brand);
    badge.textContent = brand === "unknown" ? "" : brand === "mastercard" ? "MC" : brand;
  }

  window.StripeEmuCard = {
    savedCardLabel: savedCardLabel,
    cardChecks: cardChecks,
    showBrand: showBrand,
    request: request,
    digits: digits,
    info: info,
    luhn: luhn,
    formatNumber: formatNumber,
    formatExpiry: formatExpiry,
    formatCvc: formatCvc,
    parseExpiry: parseExpiry,
    checkNumber: checkNumber,
    checkExpiry: checkExpiry,
    checkCvc: checkCvc,
    checkPostal: checkPostal,
    checkEmail: checkEmail,
    formatAmount: formatAmount,
    formEncode: formEncode,
    error: error,
    MESSAGES: MESSAGES,
  };
})();
