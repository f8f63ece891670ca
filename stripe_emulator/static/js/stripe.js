/* Stripe.js stand-in served by the Stripe emulator at /v3/.
 *
 * Pages written for real Stripe.js work unchanged when only the script URL points here:
 *
 * - Stripe(pk); stripe.elements({clientSecret}) or deferred intents
 *   stripe.elements({mode: "payment" | "setup" | "subscription", amount, currency,
 *   setupFutureUsage, captureMethod, paymentMethodCreation}), either with
 *   customerSessionClientSecret (a Customer Session: the Payment Element lists the
 *   customer's saved cards, offers "Save this card for next time" and Remove, as the
 *   session's features say); elements.update(),
 *   elements.submit(), elements.getElement(), elements.fetchUpdates().
 * - Elements: payment, card, cardNumber / cardExpiry / cardCvc, linkAuthentication, address,
 *   expressCheckout and paymentRequestButton (no wallet is ever available here: they mount,
 *   say "ready" and show nothing), with mount/on/once/off/update/focus/blur/clear/unmount/
 *   destroy and address.getValue().
 * - stripe.confirmPayment(), confirmSetup(), confirmCardPayment(), confirmCardSetup(),
 *   handleNextAction(), handleCardAction(), retrievePaymentIntent(), retrieveSetupIntent(),
 *   createPaymentMethod(), paymentRequest() (canMakePayment() resolves null).
 * - 3-D Secure is always a modal on the page (focus moves into it, stays there, and goes back
 *   when it closes); with redirect "always" the browser goes to return_url afterwards.
 *
 * Card fields live in iframes served by the emulator; this script never sees card data.
 * It talks to the frames with postMessage (checking origin and source) and to the API the
 * way Stripe.js talks to api.stripe.com (form-encoded, Authorization: Bearer pk_test_...).
 */
(function () {
  "use strict";

  if (window.Stripe && window.Stripe.__emulator) return;

  var script = document.currentScript;
  // The API lives where this script was loaded from (like js.stripe.com -> api.stripe.com).
  var API_ORIGIN = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  var AUTH_FAILURE_MESSAGE =
    "We are unable to authenticate your payment method. Please choose a different " +
    "payment method and try again.";
  var frameCounter = 0;
  // One random base per page, then a counter: names are unique within the page (a random
  // number per frame plus the counter once gave two frames the same name, and their
  // messages went to the wrong one).
  var frameBase = 1000 + Math.floor(Math.random() * 8000);
  var groupCounter = 0;
  var requestCounter = 0;
  var framesById = {};

  function IntegrationError(message) {
    var err = new Error(message);
    err.name = "IntegrationError";
    return err;
  }

  function rejected(message) {
    return Promise.reject(IntegrationError(message));
  }

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

  /* "payment" or "setup" for a client secret, or an IntegrationError. */
  var INTENTS = {
    payment: {
      prefix: "pi_",
      path: "/v1/payment_intents/",
      key: "paymentIntent",
      param: "payment_intent",
      failure: "payment_intent_authentication_failure",
    },
    setup: {
      prefix: "seti_",
      path: "/v1/setup_intents/",
      key: "setupIntent",
      param: "setup_intent",
      failure: "setup_intent_authentication_failure",
    },
  };

  function parseSecret(clientSecret, expected) {
    var value = String(clientSecret || "");
    var idx = value.indexOf("_secret_");
    var kind = value.indexOf("seti_") === 0 ? "setup" : value.indexOf("pi_") === 0 ? "payment" : null;
    if (idx <= 0 || !kind) {
      throw IntegrationError(
        "Invalid value for clientSecret: the value should be a client secret of the form " +
          "${id}_secret_${secret}. You specified: " + clientSecret + "."
      );
    }
    if (expected && kind !== expected) {
      throw IntegrationError(
        expected === "payment"
          ? "Invalid value for clientSecret: expected a PaymentIntent client secret; for a " +
              "SetupIntent use stripe.confirmSetup()."
          : "Invalid value for clientSecret: expected a SetupIntent client secret; for a " +
              "PaymentIntent use stripe.confirmPayment()."
      );
    }
    return { kind: kind, id: value.slice(0, idx), secret: value };
  }

  function connectionError() {
    return {
      type: "api_connection_error",
      message: "We could not connect to the payment service. Please check your connection.",
    };
  }

  /* One API call; answers the parsed body, or {error} for Stripe errors and network failures. */
  function api(key, method, path, params) {
    var url = API_ORIGIN + path;
    var init = {
      method: method,
      headers: { Authorization: "Bearer " + key },
      credentials: "omit",
    };
    if (method === "GET" && params) {
      url += (url.indexOf("?") === -1 ? "?" : "&") + formEncode(params);
    } else if (params) {
      init.headers["Content-Type"] = "application/x-www-form-urlencoded";
      init.body = formEncode(params);
    }
    return fetch(url, init).then(
      function (resp) {
        return resp.json().then(
          function (body) {
            if (!resp.ok && !body.error) return { error: connectionError() };
            return body;
          },
          function () {
            return { error: connectionError() };
          }
        );
      },
      function () {
        return { error: connectionError() };
      }
    );
  }

  function withParams(url, params) {
    var u = new URL(url, location.href);
    Object.keys(params).forEach(function (k) {
      if (params[k] !== undefined && params[k] !== null) u.searchParams.set(k, params[k]);
    });
    return u.toString();
  }

  function navigate(url) {
    var u = new URL(url, location.href);
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw IntegrationError("return_url must be an http(s) URL.");
    }
    try {
      window.top.location.assign(u.toString());
    } catch (e) {
      window.location.assign(u.toString());
    }
  }

  function redirectStatus(intent) {
    if (intent.status === "succeeded" || intent.status === "requires_capture") return "succeeded";
    if (intent.status === "processing") return "processing";
    return "failed";
  }

  /* The error Stripe.js reports for an intent that came back without a payment method. */
  function intentError(kind, intent) {
    var info = INTENTS[kind];
    var lpe = (kind === "setup" ? intent.last_setup_error : intent.last_payment_error) || {};
    var code = lpe.code || info.failure;
    var err = {
      type: lpe.type || "invalid_request_error",
      code: code,
      // Stripe.js words a failed 3-D Secure challenge itself (not the API's message).
      message: code === info.failure ? AUTH_FAILURE_MESSAGE : lpe.message || AUTH_FAILURE_MESSAGE,
    };
    err[info.param] = intent;
    ["decline_code", "doc_url", "param", "payment_method", "advice_code"].forEach(function (k) {
      if (lpe[k]) err[k] = lpe[k];
    });
    return err;
  }

  // ------------------------------------------------------------------ messages

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || data.__stripeEmu !== true || event.origin !== API_ORIGIN) return;
    var element = framesById[data.frame];
    if (!element || !element._iframe || event.source !== element._iframe.contentWindow) return;
    element._onMessage(data);
  });

  // What had focus last, so the 3-D Secure modal can give focus back even when the page
  // disabled its Pay button (which drops focus) before calling confirmPayment().
  var lastFocused = null;
  document.addEventListener(
    "focusin",
    function (event) {
      if (!event.target.closest || !event.target.closest(".__StripeEmuChallenge")) {
        lastFocused = event.target;
      }
    },
    true
  );

  // ------------------------------------------------------------------ 3-D Secure modal

  var STYLE_ID = "__stripeEmuStyles";

  function injectStyles() {
    if (document.getElementById(STYLE_ID)) return;
    var style = document.createElement("style");
    style.id = STYLE_ID;
    style.textContent =
      ".__StripeEmuChallenge{position:fixed;inset:0;z-index:2147483647;display:flex;" +
      "align-items:center;justify-content:center;background:rgba(10,37,64,.55);" +
      "animation:__stripeEmuFade .15s ease-out}" +
      ".__StripeEmuChallenge:focus{outline:none}" +
      ".__StripeEmuChallenge__box{position:relative;background:#fff;border-radius:10px;" +
      "width:min(440px,94vw);height:min(600px,92vh);overflow:hidden;" +
      "box-shadow:0 15px 35px rgba(50,50,93,.25),0 5px 15px rgba(0,0,0,.2)}" +
      ".__StripeEmuChallenge__box iframe{border:0;width:100%;height:100%;display:block}" +
      ".__StripeEmuChallenge__close{position:absolute;top:8px;right:8px;border:0;" +
      "background:transparent;font-size:22px;line-height:1;cursor:pointer;color:#697386;" +
      "padding:6px 10px;border-radius:6px}" +
      ".__StripeEmuChallenge__close:hover{background:#f6f9fc}" +
      ".__StripeEmuChallenge__close:focus-visible{outline:2px solid #0570de}" +
      ".__StripeEmuChallenge__guard{position:fixed;width:1px;height:1px;opacity:0}" +
      "@keyframes __stripeEmuFade{from{opacity:0}to{opacity:1}}";
    (document.head || document.documentElement).appendChild(style);
  }

  /* Give focus back to `target` now, or (a disabled Pay button) once it is enabled again. */
  function restoreFocus(target) {
    if (!target || !target.isConnected || typeof target.focus !== "function") return;
    target.focus();
    if (document.activeElement === target || !("disabled" in target) || !target.disabled) return;
    var observer = new MutationObserver(function () {
      if (target.disabled) return;
      observer.disconnect();
      var active = document.activeElement;
      if (!active || active === document.body) target.focus();
    });
    observer.observe(target, { attributes: true, attributeFilter: ["disabled"] });
    setTimeout(function () {
      observer.disconnect();
    }, 30000);
  }

  /* Show the challenge page in a modal dialog; resolves when it reports a result or is
   * closed.  The rest of the page is inert meanwhile and Tab cycles inside the dialog. */
  function openChallenge(url, key) {
    injectStyles();
    var u = new URL(url, location.href);
    if (u.pathname.indexOf("/3ds/") === 0 && u.origin !== API_ORIGIN) {
      // The emulator's own page: load it from where this script came from, whatever host
      // name the API saw on the request that made the intent.
      u = new URL(u.pathname + u.search, API_ORIGIN);
    }
    u.searchParams.set("key", key);
    u.searchParams.set("origin", location.origin);
    var challengeOrigin = u.origin;
    var active = document.activeElement;
    var opener = active && active !== document.body ? active : lastFocused;
    return new Promise(function (resolve) {
      var overlay = document.createElement("div");
      overlay.className = "__StripeEmuChallenge";
      overlay.setAttribute("role", "dialog");
      overlay.setAttribute("aria-modal", "true");
      overlay.setAttribute("aria-label", "3D Secure authentication");
      var box = document.createElement("div");
      box.className = "__StripeEmuChallenge__box";
      var iframe = document.createElement("iframe");
      iframe.name = "stripe-challenge-frame";
      iframe.id = "stripe-challenge-frame";
      iframe.title = "3D Secure authentication";
      iframe.src = u.toString();
      var close = document.createElement("button");
      close.type = "button";
      close.className = "__StripeEmuChallenge__close";
      close.setAttribute("aria-label", "Close");
      close.textContent = "\u00d7";
      function guard() {
        var g = document.createElement("span");
        g.tabIndex = 0;
        g.className = "__StripeEmuChallenge__guard";
        g.setAttribute("aria-hidden", "true");
        return g;
      }
      var startGuard = guard();
      var endGuard = guard();
      box.appendChild(iframe);
      box.appendChild(close);
      overlay.appendChild(startGuard);
      overlay.appendChild(box);
      overlay.appendChild(endGuard);
      // Everything else on the page is out of reach (and of the accessibility tree).
      var madeInert = Array.prototype.filter.call(document.body.children, function (el) {
        return !el.inert;
      });
      madeInert.forEach(function (el) {
        el.inert = true;
      });
      document.body.appendChild(overlay);
      // Tab past the end comes back to the start, Shift+Tab past the start goes to the end.
      startGuard.addEventListener("focus", function () {
        close.focus();
      });
      endGuard.addEventListener("focus", function () {
        iframe.focus();
      });
      // The dialog itself holds focus until the frame has loaded (its script has run and
      // hears Escape): a key pressed in a frame still loading had no handler and was lost.
      overlay.tabIndex = -1;
      overlay.focus();
      iframe.addEventListener("load", function () {
        var active = document.activeElement;
        if (!overlay.contains(active) || active === close || active === overlay) {
          iframe.focus();
        }
      });
      function onFocusIn(event) {
        if (!overlay.contains(event.target)) iframe.focus();
      }

      function done(result) {
        window.removeEventListener("message", onMessage);
        document.removeEventListener("keydown", onKey, true);
        document.removeEventListener("focusin", onFocusIn, true);
        if (overlay.parentNode) overlay.parentNode.removeChild(overlay);
        madeInert.forEach(function (el) {
          el.inert = false;
        });
        restoreFocus(opener);
        resolve(result);
      }
      function onMessage(event) {
        var data = event.data;
        if (event.source !== iframe.contentWindow || event.origin !== challengeOrigin) return;
        if (!data || data.__stripeEmu !== true) return;
        if (data.type === "3ds-escape") done({ closed: true });
        if (data.type === "3ds-done") done({ closed: false, status: data.status });
      }
      function onKey(event) {
        if (event.key === "Escape") done({ closed: true });
      }
      close.addEventListener("click", function () {
        done({ closed: true });
      });
      window.addEventListener("message", onMessage);
      document.addEventListener("keydown", onKey, true);
      document.addEventListener("focusin", onFocusIn, true);
    });
  }

  function nextActionUrl(intent) {
    var na = intent.next_action;
    if (na && na.type === "redirect_to_url" && na.redirect_to_url) return na.redirect_to_url.url;
    if (na && na.type === "use_stripe_sdk" && na.use_stripe_sdk && na.use_stripe_sdk.url) {
      return na.use_stripe_sdk.url;
    }
    return null;
  }

  // ------------------------------------------------------------------ Element

  // Element types served as an iframe: [frame title, initial height].
  var FRAME_TYPES = {
    payment: ["Secure payment input frame", 250],
    card: ["Secure card payment input frame", 44],
    cardNumber: ["Secure card number input frame", 44],
    cardExpiry: ["Secure expiration date input frame", 44],
    cardCvc: ["Secure CVC input frame", 44],
    linkAuthentication: ["Secure email input frame", 80],
    address: ["Secure address input frame", 330],
  };
  // Wallet buttons: no wallet is available in this browser, so they mount empty.
  var WALLET_TYPES = { expressCheckout: true, paymentRequestButton: true };
  var CARD_TYPES = ["card", "cardNumber", "cardExpiry", "cardCvc"];

  function Element(group, type, options) {
    this._group = group;
    this._type = type;
    this._options = options || {};
    this._handlers = {};
    this._frameId = "__privateStripeFrame" + (frameBase + ++frameCounter);
    this._iframe = null;
    this._container = null;
    this._mounted = false;
    this._ready = false;
    this._queue = [];
    this._requests = {};
    this._destroyed = false;
    this._lastChange = null;
  }

  Element.prototype.mount = function (target) {
    if (this._destroyed) throw IntegrationError("This Element has already been destroyed.");
    var node = typeof target === "string" ? document.querySelector(target) : target;
    if (!node || !node.appendChild) {
      throw IntegrationError(
        "The selector you specified (" + target + ") applies to no DOM elements that are " +
          "currently on the page. Make sure the element exists on the page before calling mount()."
      );
    }
    if (this._mounted) throw IntegrationError("This Element is already mounted.");
    var wrapper = document.createElement("div");
    wrapper.className = "__PrivateStripeElement";
    wrapper.style.cssText =
      "margin:0!important;padding:0!important;border:none!important;display:block!important;" +
      "background:transparent!important;position:relative!important;opacity:1!important;";
    this._container = node;
    this._wrapper = wrapper;
    this._mounted = true;
    node.classList.add("StripeElement", "StripeElement--empty");
    if (WALLET_TYPES[this._type]) {
      // Nothing to show: no wallet here.  Say so the way Stripe.js does, without blocking.
      wrapper.style.display = "none";
      node.appendChild(wrapper);
      var self = this;
      setTimeout(function () {
        if (!self._mounted) return;
        self._ready = true;
        var event = { elementType: self._type };
        if (self._type === "expressCheckout") event.availablePaymentMethods = undefined;
        self._emit("ready", event);
      }, 0);
      return this;
    }
    var spec = FRAME_TYPES[this._type];
    var iframe = document.createElement("iframe");
    iframe.name = this._frameId;
    iframe.title = spec[0];
    iframe.setAttribute("frameborder", "0");
    iframe.setAttribute("allowtransparency", "true");
    iframe.setAttribute("scrolling", "no");
    iframe.setAttribute("allow", "payment *");
    iframe.style.cssText =
      "border:none!important;margin:0!important;padding:0!important;width:1px!important;" +
      "min-width:100%!important;overflow:hidden!important;display:block!important;" +
      "user-select:none!important;transition:height .1s ease-out;height:" + spec[1] + "px;";
    iframe.src =
      API_ORIGIN + "/elements/" + this._type +
      "?frame=" + encodeURIComponent(this._frameId) +
      "&group=" + encodeURIComponent(this._group._id) +
      "&origin=" + encodeURIComponent(location.origin);
    wrapper.appendChild(iframe);
    node.appendChild(wrapper);
    this._iframe = iframe;
    framesById[this._frameId] = this;
    if (this._type === "payment" && this._group._options.clientSecret) this._checkSecret();
    return this;
  };

  /* A Payment Element whose client secret names no intent cannot load: "loaderror". */
  Element.prototype._checkSecret = function () {
    var self = this;
    var secret = this._group._options.clientSecret;
    var pending;
    try {
      parseSecret(secret);
      pending = this._group._stripe._retrieve(secret);
    } catch (e) {
      pending = Promise.resolve({ error: { type: "invalid_request_error", message: e.message } });
    }
    pending.then(function (res) {
      if (res.error && self._mounted) {
        self._emit("loaderror", { elementType: self._type, error: res.error });
      }
    });
  };

  Element.prototype._post = function (message) {
    message.__stripeEmu = true;
    if (!this._ready) {
      this._queue.push(message);
      return;
    }
    this._iframe.contentWindow.postMessage(message, API_ORIGIN);
  };

  Element.prototype._request = function (type, payload) {
    var self = this;
    if (!this._iframe) {
      return rejected("The " + this._type + " Element must be mounted before it can be used.");
    }
    var reqId = "req" + ++requestCounter;
    return new Promise(function (resolve) {
      self._requests[reqId] = resolve;
      var message = { type: type, reqId: reqId };
      Object.keys(payload || {}).forEach(function (k) {
        message[k] = payload[k];
      });
      self._post(message);
    });
  };

  Element.prototype._frameOptions = function () {
    var group = this._group;
    var out = {};
    Object.keys(this._options).forEach(function (k) {
      if (k !== "paymentRequest") out[k] = this._options[k];
    }, this);
    out.__group = group._publicOptions();
    return out;
  };

  Element.prototype._init = function () {
    var group = this._group;
    var message = {
      __stripeEmu: true,
      type: "init",
      key: group._stripe._key,
      options: this._frameOptions(),
      appearance: group._options.appearance || null,
      locale: group._options.locale || group._stripe._options.locale || null,
    };
    // Only the Payment Element's frame (the emulator's origin) reads the customer's
    // saved cards with it; the other frames never see it.
    if (this._type === "payment" && group._options.customerSessionClientSecret) {
      message.customerSessionClientSecret = group._options.customerSessionClientSecret;
    }
    this._iframe.contentWindow.postMessage(message, API_ORIGIN);
  };

  Element.prototype._onMessage = function (data) {
    switch (data.type) {
      case "loaded":
        this._init();
        break;
      case "loaderror":
        this._emit("loaderror", { elementType: this._type, error: data.error });
        break;
      case "ready":
        this._ready = true;
        while (this._queue.length) {
          this._iframe.contentWindow.postMessage(this._queue.shift(), API_ORIGIN);
        }
        this._emit("ready", { elementType: this._type });
        break;
      case "resize":
        if (typeof data.height === "number" && data.height > 0) {
          this._iframe.style.height = Math.ceil(data.height) + "px";
        }
        break;
      case "change":
        this._lastChange = data.event;
        this._updateClasses(data.event);
        this._emit("change", data.event);
        break;
      case "focus":
      case "blur":
        if (this._container) {
          this._container.classList.toggle("StripeElement--focus", data.type === "focus");
        }
        this._emit(data.type, { elementType: this._type });
        break;
      case "escape":
        this._emit("escape", { elementType: this._type });
        break;
      case "enter":
        this._submitForm();
        break;
      case "result":
        var resolve = this._requests[data.reqId];
        if (resolve) {
          delete this._requests[data.reqId];
          resolve(data.result);
        }
        break;
    }
  };

  /* Implicit submission: Enter in an element's field submits the form around it, unless
   * its submit button is disabled (as for a field of the page). */
  Element.prototype._submitForm = function () {
    var form = this._container && this._container.closest && this._container.closest("form");
    if (!form) return;
    var button = form.querySelector('button:not([type]), button[type="submit"], input[type="submit"]');
    if (button && button.disabled) return;
    if (form.requestSubmit) form.requestSubmit();
    else form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
  };

  Element.prototype._updateClasses = function (event) {
    var c = this._container;
    if (!c) return;
    c.classList.toggle("StripeElement--empty", !!event.empty);
    c.classList.toggle("StripeElement--complete", !!event.complete);
    c.classList.toggle("StripeElement--invalid", !!event.error);
  };

  Element.prototype._emit = function (name, event) {
    (this._handlers[name] || []).slice().forEach(function (fn) {
      try {
        fn(event);
      } catch (e) {
        setTimeout(function () {
          throw e;
        });
      }
    });
  };

  Element.prototype.on = function (name, handler) {
    if (typeof handler !== "function") throw IntegrationError("The handler must be a function.");
    (this._handlers[name] = this._handlers[name] || []).push(handler);
    return this;
  };
  Element.prototype.addEventListener = Element.prototype.on;

  Element.prototype.once = function (name, handler) {
    var self = this;
    function wrapped(event) {
      self.off(name, wrapped);
      handler(event);
    }
    return this.on(name, wrapped);
  };

  Element.prototype.off = function (name, handler) {
    if (!handler) delete this._handlers[name];
    else this._handlers[name] = (this._handlers[name] || []).filter(function (h) {
      return h !== handler;
    });
    return this;
  };
  Element.prototype.removeEventListener = Element.prototype.off;

  Element.prototype.update = function (options) {
    Object.keys(options || {}).forEach(function (k) {
      this._options[k] = options[k];
    }, this);
    if (this._iframe) this._post({ type: "update", options: this._frameOptions() });
    return this;
  };

  Element.prototype.focus = function () {
    if (this._iframe) this._post({ type: "focus" });
    return this;
  };

  Element.prototype.blur = function () {
    if (this._iframe) this._post({ type: "blur" });
    return this;
  };

  Element.prototype.clear = function () {
    if (this._iframe) this._post({ type: "clear" });
    return this;
  };

  Element.prototype.collapse = function () {
    return this;
  };

  /* The Address Element's current value: {complete, isNewAddress, value: {name, address}}. */
  Element.prototype.getValue = function () {
    if (this._type !== "address") {
      return rejected("getValue() is only available on the Address Element.");
    }
    return this._request("getValue");
  };

  Element.prototype.unmount = function () {
    if (this._wrapper && this._wrapper.parentNode) this._wrapper.parentNode.removeChild(this._wrapper);
    if (this._container) {
      this._container.classList.remove(
        "StripeElement", "StripeElement--empty", "StripeElement--complete",
        "StripeElement--invalid", "StripeElement--focus"
      );
    }
    delete framesById[this._frameId];
    var pending = this._requests;
    this._requests = {};
    Object.keys(pending).forEach(function (id) {
      pending[id]({ error: { type: "validation_error", message: "The Element was unmounted." } });
    });
    this._iframe = null;
    this._wrapper = null;
    this._container = null;
    this._mounted = false;
    this._ready = false;
    this._queue = [];
    return this;
  };

  Element.prototype.destroy = function () {
    this.unmount();
    this._destroyed = true;
    delete this._group._elements[this._type];
    this._handlers = {};
    return this;
  };

  // ------------------------------------------------------------------ Elements group

  var MODES = ["payment", "setup", "subscription"];

  /* Check the deferred-intent options like Stripe.js (IntegrationError on a bad value). */
  function checkIntentOptions(opts, creating) {
    if (opts.mode !== undefined && MODES.indexOf(opts.mode) === -1) {
      throw IntegrationError(
        "Invalid value for elements(): mode should be one of the following strings: " +
          MODES.join(", ") + ". You specified: " + opts.mode + "."
      );
    }
    var cuss = opts.customerSessionClientSecret;
    if (cuss !== undefined && cuss !== null &&
        !(typeof cuss === "string" && cuss.indexOf("cuss_secret_") === 0)) {
      throw IntegrationError(
        "Invalid value for elements(): customerSessionClientSecret should be a Customer " +
          "Session client secret (cuss_secret_...). You specified: " + cuss + "."
      );
    }
    if (!creating || !opts.mode || opts.clientSecret) return;
    if (opts.mode !== "setup" && !(typeof opts.amount === "number" && opts.amount >= 0 &&
        Math.floor(opts.amount) === opts.amount)) {
      throw IntegrationError(
        "Invalid value for elements(): amount should be a non-negative integer in the " +
          "currency's smallest unit when mode is " + opts.mode + ". You specified: " +
          opts.amount + "."
      );
    }
    if (typeof opts.currency !== "string" || !/^[a-zA-Z]{3}$/.test(opts.currency)) {
      throw IntegrationError(
        "Invalid value for elements(): currency should be a three-letter ISO currency code. " +
          "You specified: " + opts.currency + "."
      );
    }
    var choices = {
      setupFutureUsage: ["off_session", "on_session"],
      captureMethod: ["automatic", "automatic_async", "manual"],
      paymentMethodCreation: ["manual"],
    };
    Object.keys(choices).forEach(function (name) {
      if (opts[name] !== undefined && opts[name] !== null &&
          choices[name].indexOf(opts[name]) === -1) {
        throw IntegrationError(
          "Invalid value for elements(): " + name + " should be one of the following " +
            "strings: " + choices[name].join(", ") + ". You specified: " + opts[name] + "."
        );
      }
    });
  }

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._options = {};
    Object.keys(options || {}).forEach(function (k) {
      this._options[k] = options[k];
    }, this);
    checkIntentOptions(this._options, true);
    this._deferred = !this._options.clientSecret && !!this._options.mode;
    this._elements = {};
    this._submitted = false;
    this._id = "grp" + Date.now().toString(36) + ++groupCounter;
  }

  /* What the frames may know about the group (no key, no client secret). */
  Elements.prototype._publicOptions = function () {
    var o = this._options;
    var intentType = o.clientSecret
      ? String(o.clientSecret).indexOf("seti_") === 0 ? "setup" : "payment"
      : o.mode === "setup" ? "setup" : o.mode ? "payment" : null;
    return {
      mode: o.mode || null,
      amount: typeof o.amount === "number" ? o.amount : null,
      currency: o.currency ? String(o.currency).toLowerCase() : null,
      setupFutureUsage: o.setupFutureUsage || null,
      intentType: intentType,
      deferred: this._deferred,
    };
  };

  Elements.prototype.create = function (type, options) {
    if (!FRAME_TYPES[type] && !WALLET_TYPES[type]) {
      throw IntegrationError(
        "Invalid Element type: " + JSON.stringify(type) + ". The Stripe emulator supports " +
          Object.keys(FRAME_TYPES).concat(Object.keys(WALLET_TYPES)).join(", ") + "."
      );
    }
    if (this._elements[type]) {
      throw IntegrationError("Can only create one Element of type " + type + ".");
    }
    options = options || {};
    if ((type === "payment" || type === "expressCheckout") &&
        !this._options.clientSecret && !this._options.mode) {
      throw IntegrationError(
        "In order to create a " + type + " element, you must pass a clientSecret or mode " +
          "when creating the Elements group.\n\ne.g. stripe.elements({clientSecret: " +
          "\"{{CLIENT_SECRET}}\"})"
      );
    }
    if (type === "address" && options.mode !== "shipping" && options.mode !== "billing") {
      throw IntegrationError(
        "Invalid value for create('address'): mode should be one of the following strings: " +
          "shipping, billing. You specified: " + options.mode + "."
      );
    }
    if (type === "paymentRequestButton" && !(options.paymentRequest instanceof PaymentRequest)) {
      throw IntegrationError(
        "Missing value for create('paymentRequestButton'): paymentRequest should be a " +
          "stripe.paymentRequest(...) object."
      );
    }
    if (CARD_TYPES.indexOf(type) !== -1 && this._elements.payment) {
      throw IntegrationError("Card Elements cannot be created alongside a Payment Element.");
    }
    if (type === "card" && (this._elements.cardNumber || this._elements.cardExpiry ||
        this._elements.cardCvc)) {
      throw IntegrationError("The card Element cannot be created alongside split card Elements.");
    }
    var element = new Element(this, type, options);
    this._elements[type] = element;
    return element;
  };

  Elements.prototype.getElement = function (type) {
    return this._elements[type] || null;
  };

  Elements.prototype.update = function (options) {
    var self = this;
    options = options || {};
    var merged = {};
    Object.keys(this._options).forEach(function (k) {
      merged[k] = self._options[k];
    });
    Object.keys(options).forEach(function (k) {
      merged[k] = options[k];
    });
    checkIntentOptions(merged, true);
    this._options = merged;
    Object.keys(this._elements).forEach(function (t) {
      var el = self._elements[t];
      if (el._iframe) {
        el._post({
          type: "update",
          appearance: options.appearance || null,
          options: el._frameOptions(),
        });
      }
    });
    return this;
  };

  Elements.prototype.fetchUpdates = function () {
    return Promise.resolve({});
  };

  /* The element whose frame holds the card fields (and confirms). */
  Elements.prototype._cardElement = function () {
    return this._elements.payment || this._elements.card || this._elements.cardNumber || null;
  };

  Elements.prototype._mounted = function (type) {
    var el = this._elements[type];
    return el && el._iframe ? el : null;
  };

  /* Validate every mounted element (no API call): {} or {error: {type: "validation_error"}}.
   * With deferred intents this must come first when the customer presses Pay. */
  Elements.prototype.submit = function () {
    var self = this;
    var order = ["linkAuthentication", "address", "payment"];
    var mounted = order.map(function (t) {
      return self._mounted(t);
    }).filter(Boolean);
    if (!mounted.length) {
      return Promise.resolve({
        error: {
          type: "validation_error",
          code: "incomplete",
          message: "Please mount a Payment Element before calling elements.submit().",
        },
      });
    }
    this._submitted = false;
    return Promise.all(
      mounted.map(function (el) {
        return el._request("validate");
      })
    ).then(function (results) {
      for (var i = 0; i < results.length; i++) {
        if (results[i] && results[i].error) return { error: results[i].error };
      }
      self._submitted = true;
      return {};
    });
  };

  /* Values the other elements add to a confirm: receipt email, shipping, billing details. */
  Elements.prototype._extras = function () {
    var out = { email: null, shipping: null, billing: null };
    var link = this._mounted("linkAuthentication");
    if (link && link._lastChange && link._lastChange.complete) {
      out.email = link._lastChange.value.email;
    }
    var address = this._mounted("address");
    if (address && address._lastChange && address._lastChange.complete) {
      var v = address._lastChange.value;
      var details = { name: v.name, address: v.address };
      if (v.phone) details.phone = v.phone;
      if (address._options.mode === "shipping") out.shipping = details;
      else out.billing = details;
    }
    return out;
  };

  // ------------------------------------------------------------------ Payment Request

  function PaymentRequest(options) {
    options = options || {};
    if (!options.country || !options.currency || !options.total) {
      throw IntegrationError(
        "stripe.paymentRequest() needs country, currency and total ({label, amount})."
      );
    }
    this._options = options;
    this._handlers = {};
  }

  /* No wallet (Apple Pay, Google Pay, Link) can pay in this browser. */
  PaymentRequest.prototype.canMakePayment = function () {
    return Promise.resolve(null);
  };
  PaymentRequest.prototype.show = function () {
    throw IntegrationError(
      "paymentRequest.show() was called, but no payment method is available " +
        "(canMakePayment() resolved null)."
    );
  };
  PaymentRequest.prototype.update = function (options) {
    Object.keys(options || {}).forEach(function (k) {
      this._options[k] = options[k];
    }, this);
  };
  PaymentRequest.prototype.abort = function () {};
  PaymentRequest.prototype.isShowing = function () {
    return false;
  };
  PaymentRequest.prototype.on = function (name, handler) {
    (this._handlers[name] = this._handlers[name] || []).push(handler);
    return this;
  };
  PaymentRequest.prototype.off = function (name, handler) {
    this._handlers[name] = (this._handlers[name] || []).filter(function (h) {
      return h !== handler;
    });
    return this;
  };

  // ------------------------------------------------------------------ Stripe instance

  function StripeInstance(key, options) {
    this._key = key;
    this._options = options || {};
  }

  StripeInstance.prototype.elements = function (options) {
    return new Elements(this, options);
  };

  StripeInstance.prototype.paymentRequest = function (options) {
    return new PaymentRequest(options);
  };

  StripeInstance.prototype._retrieve = function (clientSecret, expected) {
    var parsed;
    try {
      parsed = parseSecret(clientSecret, expected);
    } catch (e) {
      return Promise.reject(e);
    }
    var info = INTENTS[parsed.kind];
    return api(this._key, "GET", info.path + encodeURIComponent(parsed.id), {
      client_secret: clientSecret,
    }).then(function (body) {
      if (body.error) return { error: body.error };
      var out = {};
      out[info.key] = body;
      return out;
    });
  };

  StripeInstance.prototype.retrievePaymentIntent = function (clientSecret) {
    return this._retrieve(clientSecret, "payment");
  };

  StripeInstance.prototype.retrieveSetupIntent = function (clientSecret) {
    return this._retrieve(clientSecret, "setup");
  };

  /* After a confirm: run 3-D Secure if asked, then answer like Stripe.js (or redirect).
   * ctx: {kind, clientSecret, redirect, returnUrl, handleActions}. */
  StripeInstance.prototype._finish = function (result, ctx) {
    if (!result) return Promise.resolve({ error: connectionError() });
    if (result.error) return Promise.resolve({ error: result.error });
    var intent = result[INTENTS[ctx.kind].key];
    if (intent.status === "requires_action" && ctx.handleActions !== false) {
      var url = nextActionUrl(intent);
      if (!url) {
        var err = {
          type: "invalid_request_error",
          code: INTENTS[ctx.kind].param + "_unexpected_state",
          message: "The Stripe emulator cannot handle this next_action.",
        };
        err[INTENTS[ctx.kind].param] = intent;
        return Promise.resolve({ error: err });
      }
      return this._challenge(url, ctx);
    }
    return this._settled(intent, ctx);
  };

  /* 3-D Secure in a modal, whatever `redirect` says (as Stripe.js does for cards). */
  StripeInstance.prototype._challenge = function (url, ctx) {
    var self = this;
    var parsed = parseSecret(ctx.clientSecret);
    var info = INTENTS[parsed.kind];
    return openChallenge(url, this._key)
      .then(function (outcome) {
        if (outcome.closed) {
          // Closing the modal abandons the authentication, as on Stripe.
          return api(self._key, "POST", info.path + encodeURIComponent(parsed.id) +
            "/authenticate", { client_secret: ctx.clientSecret, result: "fail" });
        }
        return null;
      })
      .then(function () {
        return self._retrieve(ctx.clientSecret);
      })
      .then(function (res) {
        if (res.error) return { error: res.error };
        return self._settled(res[info.key], ctx);
      });
  };

  StripeInstance.prototype._settled = function (intent, ctx) {
    var info = INTENTS[ctx.kind];
    var failed =
      intent.status === "requires_payment_method" &&
      (ctx.kind === "setup" ? intent.last_setup_error : intent.last_payment_error);
    if (failed || intent.status === "canceled") {
      return Promise.resolve({ error: intentError(ctx.kind, intent) });
    }
    if (ctx.redirect === "always" && ctx.returnUrl) {
      var params = { redirect_status: redirectStatus(intent) };
      params[info.param] = intent.id;
      params[info.param + "_client_secret"] = ctx.clientSecret;
      navigate(withParams(ctx.returnUrl, params));
      return new Promise(function () {}); // the page is going away
    }
    var out = {};
    out[info.key] = intent;
    return Promise.resolve(out);
  };

  function confirmFields(params) {
    var out = {};
    ["return_url", "receipt_email", "setup_future_usage", "shipping", "save_payment_method"].forEach(
      function (k) {
        if (params && params[k] !== undefined && params[k] !== null) out[k] = params[k];
      }
    );
    return out;
  }

  function mergeBilling(given, extra) {
    if (!extra) return given || null;
    var out = JSON.parse(JSON.stringify(extra));
    Object.keys(given || {}).forEach(function (k) {
      out[k] = given[k];
    });
    return out;
  }

  /* confirmPayment / confirmSetup with an Elements group. */
  StripeInstance.prototype._confirmElements = function (kind, name, options) {
    var self = this;
    options = options || {};
    var elements = options.elements;
    if (!elements || !(elements instanceof Elements)) {
      return rejected("Invalid value for " + name + ": elements should be an Elements group.");
    }
    if (elements._deferred && !options.clientSecret) {
      return rejected(
        "stripe." + name + "(): the `clientSecret` argument is required when the Elements " +
          "group was created with `mode` (create the intent on your server, then pass its " +
          "client secret)."
      );
    }
    if (!elements._deferred && options.clientSecret && elements._options.clientSecret &&
        options.clientSecret !== elements._options.clientSecret) {
      return rejected(
        "stripe." + name + "(): the `clientSecret` differs from the one the Elements group " +
          "was created with."
      );
    }
    var clientSecret = options.clientSecret || elements._options.clientSecret;
    var confirmParams = options.confirmParams || {};
    var redirect = options.redirect || "always";
    try {
      parseSecret(clientSecret, kind);
    } catch (e) {
      return Promise.reject(e);
    }
    if (redirect !== "always" && redirect !== "if_required") {
      return rejected('redirect must be "always" or "if_required".');
    }
    if (redirect === "always" && !confirmParams.return_url) {
      return rejected(
        "stripe." + name + "(): the `confirmParams.return_url` argument is required " +
          "unless passing `redirect: 'if_required'`"
      );
    }
    if (elements._deferred) {
      if (!elements._submitted) {
        return rejected(
          "elements.submit() must be called before stripe." + name + "(). Call " +
            "elements.submit() as soon as your customer presses pay, prior to any " +
            "asynchronous work."
        );
      }
      var wanted = elements._options.mode === "setup" ? "setup" : "payment";
      if (wanted !== kind) {
        return rejected(
          "stripe." + name + "(): the Elements group was created with mode \"" +
            elements._options.mode + "\"; use stripe." +
            (wanted === "setup" ? "confirmSetup" : "confirmPayment") + "()."
        );
      }
    }
    var el = elements._cardElement();
    if (!el || !el._iframe) {
      return rejected("stripe." + name + "(): the Payment Element must be mounted first.");
    }
    var extras = elements._extras();
    var fields = confirmFields(confirmParams);
    if (kind === "payment" && !fields.receipt_email && extras.email) {
      fields.receipt_email = extras.email;
    }
    if (kind === "payment" && !fields.shipping && extras.shipping) fields.shipping = extras.shipping;
    if (kind === "setup") {
      delete fields.receipt_email;
      delete fields.shipping;
      delete fields.setup_future_usage;
    }
    var pmData = confirmParams.payment_method_data || {};
    var billing = mergeBilling(pmData.billing_details, extras.billing);
    if (extras.email && !(billing && billing.email)) {
      billing = billing || {};
      billing.email = extras.email;
    }
    var checked = elements._deferred && kind === "payment"
      ? this._checkDeferred(elements, clientSecret, name)
      : Promise.resolve(null);
    return checked
      .then(function (mismatch) {
        if (mismatch) throw IntegrationError(mismatch);
        return el._request("confirm", {
        intentType: kind,
        clientSecret: clientSecret,
          confirmParams: fields,
          billingDetails: billing,
        });
      })
      .then(function (result) {
        return self._finish(result, {
          kind: kind,
          clientSecret: clientSecret,
          redirect: redirect,
          returnUrl: confirmParams.return_url,
        });
      });
  };

  /* Deferred intents: the intent the server made must be set up like the Elements group
   * (setupFutureUsage, captureMethod), as Stripe.js checks; answers a message or null. */
  StripeInstance.prototype._checkDeferred = function (elements, clientSecret, name) {
    return this._retrieve(clientSecret, "payment").then(function (res) {
      if (res.error) return null; // the confirm itself reports it
      var pi = res.paymentIntent;
      var o = elements._options;
      var wantedUsage = o.mode === "subscription" ? "off_session" : o.setupFutureUsage || null;
      var wantedCapture = o.captureMethod === "manual" ? "manual" : "automatic";
      var capture = pi.capture_method === "manual" ? "manual" : "automatic";
      if (o.mode !== "subscription" && (pi.setup_future_usage || null) !== wantedUsage) {
        return (
          "stripe." + name + "(): the PaymentIntent's setup_future_usage (" +
          pi.setup_future_usage + ") does not match the setupFutureUsage the Elements group " +
          "was created with (" + wantedUsage + "). Create the PaymentIntent with the same " +
          "options as stripe.elements()."
        );
      }
      if (capture !== wantedCapture) {
        return (
          "stripe." + name + "(): the PaymentIntent's capture_method (" + pi.capture_method +
          ") does not match the captureMethod the Elements group was created with (" +
          (o.captureMethod || "automatic") + "). Create the PaymentIntent with the same " +
          "options as stripe.elements()."
        );
      }
      return null;
    });
  };

  StripeInstance.prototype.confirmPayment = function (options) {
    return this._confirmElements("payment", "confirmPayment", options);
  };

  StripeInstance.prototype.confirmSetup = function (options) {
    return this._confirmElements("setup", "confirmSetup", options);
  };

  /* confirmCardPayment / confirmCardSetup: a card Element, a PaymentMethod id, or nothing. */
  StripeInstance.prototype._confirmCard = function (kind, clientSecret, data, options) {
    var self = this;
    data = data || {};
    var handleActions = !(options && options.handleActions === false);
    var parsed;
    try {
      parsed = parseSecret(clientSecret, kind);
    } catch (e) {
      return Promise.reject(e);
    }
    var pm = data.payment_method;
    var ctx = {
      kind: kind,
      clientSecret: clientSecret,
      redirect: "if_required",
      handleActions: handleActions,
    };
    var fields = confirmFields(data);
    if (kind === "setup") {
      delete fields.receipt_email;
      delete fields.shipping;
      delete fields.setup_future_usage;
    }
    var pending;
    if (pm && pm.card instanceof Element) {
      if (CARD_TYPES.concat(["payment"]).indexOf(pm.card._type) === -1) {
        return rejected("payment_method.card must be a card, cardNumber or payment Element.");
      }
      var el = pm.card._type === "cardExpiry" || pm.card._type === "cardCvc"
        ? pm.card._group._elements.cardNumber
        : pm.card;
      if (!el || !el._iframe) return rejected("The card Element must be mounted first.");
      pending = el._request("confirm", {
        intentType: kind,
        clientSecret: clientSecret,
        confirmParams: fields,
        billingDetails: pm.billing_details || null,
      });
    } else if (pm && typeof pm === "object" && pm.card) {
      return rejected("payment_method.card must be a mounted card or payment Element.");
    } else {
      // An existing PaymentMethod id (or the one already on the intent): no card data involved.
      var params = fields;
      params.client_secret = clientSecret;
      if (typeof pm === "string") params.payment_method = pm;
      var info = INTENTS[kind];
      pending = api(this._key, "POST", info.path + encodeURIComponent(parsed.id) + "/confirm",
        params).then(function (body) {
        if (body.error) return { error: body.error };
        var out = {};
        out[info.key] = body;
        return out;
      });
    }
    return pending.then(function (result) {
      return self._finish(result, ctx);
    });
  };

  StripeInstance.prototype.confirmCardPayment = function (clientSecret, data, options) {
    return this._confirmCard("payment", clientSecret, data, options);
  };

  StripeInstance.prototype.confirmCardSetup = function (clientSecret, data, options) {
    return this._confirmCard("setup", clientSecret, data, options);
  };

  /* After the server confirmed an intent that needs 3-D Secure (e.g. createPaymentMethod
   * then a server-side confirm): show the challenge, answer {paymentIntent} or {error}. */
  StripeInstance.prototype.handleNextAction = function (options) {
    var self = this;
    var clientSecret = (options || {}).clientSecret;
    var parsed;
    try {
      parsed = parseSecret(clientSecret);
    } catch (e) {
      return Promise.reject(e);
    }
    return this._retrieve(clientSecret).then(function (res) {
      if (res.error) return res;
      var intent = res[INTENTS[parsed.kind].key];
      if (intent.status !== "requires_action") {
        return rejected(
          "handleNextAction: the " + (parsed.kind === "setup" ? "SetupIntent" : "PaymentIntent") +
            " is in status " + intent.status + " and has no next action to handle."
        );
      }
      return self._finish(res, {
        kind: parsed.kind,
        clientSecret: clientSecret,
        redirect: "if_required",
      });
    });
  };

  StripeInstance.prototype.handleCardAction = function (clientSecret) {
    return this.handleNextAction({ clientSecret: clientSecret });
  };

  StripeInstance.prototype.createPaymentMethod = function (options) {
    options = options || {};
    var el = null;
    var billing = null;
    if (options.elements instanceof Elements) {
      var group = options.elements;
      if (group._deferred && group._options.paymentMethodCreation !== "manual") {
        return rejected(
          "stripe.createPaymentMethod() with `elements` requires the Elements group to be " +
            "created with paymentMethodCreation: 'manual'."
        );
      }
      if (group._deferred && !group._submitted) {
        return rejected(
          "elements.submit() must be called before stripe.createPaymentMethod(). Call " +
            "elements.submit() as soon as your customer presses pay, prior to any " +
            "asynchronous work."
        );
      }
      el = group._cardElement();
      var extras = group._extras();
      billing = mergeBilling(((options.params || {}).billing_details) || null, extras.billing);
      if (extras.email && !(billing && billing.email)) {
        billing = billing || {};
        billing.email = extras.email;
      }
    } else if (options.card instanceof Element || options.element instanceof Element) {
      el = options.card || options.element;
      if (el._type === "cardExpiry" || el._type === "cardCvc") el = el._group._elements.cardNumber;
      billing = options.billing_details || null;
      if (options.type && options.type !== "card") {
        return rejected("The Stripe emulator creates card PaymentMethods only.");
      }
    }
    if (!el || !el._iframe) {
      return rejected("createPaymentMethod needs a mounted card or Payment Element.");
    }
    return el._request("createPaymentMethod", { billingDetails: billing }).then(function (res) {
      return res.error ? { error: res.error } : { paymentMethod: res.paymentMethod };
    });
  };

  function Stripe(key, options) {
    if (!key || typeof key !== "string") {
      throw IntegrationError(
        "Please call Stripe() with your publishable key. You used an empty string."
      );
    }
    if (/^(sk|rk)_/.test(key)) {
      throw IntegrationError(
        "You should not use your secret key with Stripe.js. Please pass a publishable key instead."
      );
    }
    return new StripeInstance(key, options);
  }
  Stripe.__emulator = true;
  Stripe.version = 3;

  window.Stripe = Stripe;
})();
