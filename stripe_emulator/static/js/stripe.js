/* Stripe.js stand-in served by the Stripe emulator at /v3/.
 *
 * Implements the part of Stripe.js the shop uses: Stripe(pk), stripe.elements(),
 * elements.create("payment" | "card"), element.mount/on/update/unmount/destroy,
 * elements.submit(), stripe.confirmPayment(), stripe.confirmCardPayment(),
 * stripe.retrievePaymentIntent(), stripe.handleNextAction(), stripe.createPaymentMethod().
 *
 * Card fields live in an iframe served by the emulator; this script never sees card data.
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
  var requestCounter = 0;
  var framesById = {};

  function IntegrationError(message) {
    var err = new Error(message);
    err.name = "IntegrationError";
    return err;
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

  function piIdFromSecret(clientSecret) {
    var idx = String(clientSecret || "").indexOf("_secret_");
    if (idx <= 0) {
      throw IntegrationError(
        "Invalid value for clientSecret: the value should be a client secret of the form " +
          "${id}_secret_${secret}. You specified: " + clientSecret + "."
      );
    }
    return clientSecret.slice(0, idx);
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

  function redirectStatus(pi) {
    if (pi.status === "succeeded" || pi.status === "requires_capture") return "succeeded";
    if (pi.status === "processing") return "processing";
    return "failed";
  }

  function authError(pi) {
    var lpe = pi.last_payment_error || {};
    var err = {
      type: lpe.type || "invalid_request_error",
      code: lpe.code || "payment_intent_authentication_failure",
      message: lpe.message || AUTH_FAILURE_MESSAGE,
      payment_intent: pi,
    };
    ["decline_code", "doc_url", "param", "payment_method"].forEach(function (k) {
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
      ".__StripeEmuChallenge__box{position:relative;background:#fff;border-radius:10px;" +
      "width:min(440px,94vw);height:min(600px,92vh);overflow:hidden;" +
      "box-shadow:0 15px 35px rgba(50,50,93,.25),0 5px 15px rgba(0,0,0,.2)}" +
      ".__StripeEmuChallenge__box iframe{border:0;width:100%;height:100%;display:block}" +
      ".__StripeEmuChallenge__close{position:absolute;top:8px;right:8px;border:0;" +
      "background:transparent;font-size:22px;line-height:1;cursor:pointer;color:#697386;" +
      "padding:6px 10px;border-radius:6px}" +
      ".__StripeEmuChallenge__close:hover{background:#f6f9fc}" +
      "@keyframes __stripeEmuFade{from{opacity:0}to{opacity:1}}";
    (document.head || document.documentElement).appendChild(style);
  }

  /* Show the challenge page in a modal; resolves when it reports a result or is closed. */
  function openChallenge(url, key) {
    injectStyles();
    var u = new URL(url, location.href);
    u.searchParams.set("key", key);
    u.searchParams.set("origin", location.origin);
    var challengeOrigin = u.origin;
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
      box.appendChild(iframe);
      box.appendChild(close);
      overlay.appendChild(box);
      document.body.appendChild(overlay);

      function done(result) {
        window.removeEventListener("message", onMessage);
        document.removeEventListener("keydown", onKey);
        if (overlay.parentNode) overlay.parentNode.removeChild(overlay);
        resolve(result);
      }
      function onMessage(event) {
        var data = event.data;
        if (event.source !== iframe.contentWindow || event.origin !== challengeOrigin) return;
        if (!data || data.__stripeEmu !== true || data.type !== "3ds-done") return;
        done({ closed: false, status: data.status });
      }
      function onKey(event) {
        if (event.key === "Escape") done({ closed: true });
      }
      close.addEventListener("click", function () {
        done({ closed: true });
      });
      window.addEventListener("message", onMessage);
      document.addEventListener("keydown", onKey);
    });
  }

  function nextActionUrl(pi) {
    var na = pi.next_action;
    if (na && na.type === "redirect_to_url" && na.redirect_to_url) return na.redirect_to_url.url;
    return null;
  }

  // ------------------------------------------------------------------ Element

  var ELEMENT_HEIGHTS = { payment: 250, card: 44 };

  function Element(group, type, options) {
    this._group = group;
    this._type = type;
    this._options = options || {};
    this._handlers = {};
    this._frameId = "__privateStripeFrame" + (1000 + Math.floor(Math.random() * 8000) + ++frameCounter);
    this._iframe = null;
    this._container = null;
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
    if (this._iframe) throw IntegrationError("This Element is already mounted.");
    var wrapper = document.createElement("div");
    wrapper.className = "__PrivateStripeElement";
    wrapper.style.cssText =
      "margin:0!important;padding:0!important;border:none!important;display:block!important;" +
      "background:transparent!important;position:relative!important;opacity:1!important;";
    var iframe = document.createElement("iframe");
    iframe.name = this._frameId;
    iframe.title = "Secure payment input frame";
    iframe.setAttribute("frameborder", "0");
    iframe.setAttribute("allowtransparency", "true");
    iframe.setAttribute("scrolling", "no");
    iframe.setAttribute("allow", "payment *");
    iframe.style.cssText =
      "border:none!important;margin:0!important;padding:0!important;width:1px!important;" +
      "min-width:100%!important;overflow:hidden!important;display:block!important;" +
      "user-select:none!important;transition:height .1s ease-out;height:" +
      ELEMENT_HEIGHTS[this._type] + "px;";
    iframe.src =
      API_ORIGIN + "/elements/" + this._type +
      "?frame=" + encodeURIComponent(this._frameId) +
      "&origin=" + encodeURIComponent(location.origin);
    wrapper.appendChild(iframe);
    node.appendChild(wrapper);
    this._container = node;
    this._wrapper = wrapper;
    this._iframe = iframe;
    framesById[this._frameId] = this;
    node.classList.add("StripeElement", "StripeElement--empty");
    return this;
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
      return Promise.reject(
        IntegrationError("The " + this._type + " Element must be mounted before it can be used.")
      );
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

  Element.prototype._init = function () {
    var group = this._group;
    this._iframe.contentWindow.postMessage(
      {
        __stripeEmu: true,
        type: "init",
        key: group._stripe._key,
        options: this._options,
        appearance: group._options.appearance || null,
        locale: group._options.locale || group._stripe._options.locale || null,
      },
      API_ORIGIN
    );
  };

  Element.prototype._onMessage = function (data) {
    switch (data.type) {
      case "loaded":
        this._init();
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
      case "result":
        var resolve = this._requests[data.reqId];
        if (resolve) {
          delete this._requests[data.reqId];
          resolve(data.result);
        }
        break;
    }
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
    if (this._iframe) this._post({ type: "update", options: options || {} });
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

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._options = options || {};
    this._elements = {};
  }

  Elements.prototype.create = function (type, options) {
    if (type !== "payment" && type !== "card") {
      throw IntegrationError(
        'The Stripe emulator supports elements.create("payment") and elements.create("card") ' +
          "only; got " + JSON.stringify(type) + "."
      );
    }
    if (this._elements[type]) {
      throw IntegrationError("Can only create one Element of type " + type + ".");
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
    Object.keys(options || {}).forEach(function (k) {
      self._options[k] = options[k];
    });
    Object.keys(this._elements).forEach(function (t) {
      var el = self._elements[t];
      if (el._iframe && options && options.appearance) {
        el._post({ type: "update", appearance: options.appearance });
      }
    });
    return this;
  };

  Elements.prototype.fetchUpdates = function () {
    return Promise.resolve({});
  };

  Elements.prototype._cardElement = function () {
    return this._elements.payment || this._elements.card || null;
  };

  /* Validate the fields (no API call): {} or {error: {type: "validation_error", ...}}. */
  Elements.prototype.submit = function () {
    var el = this._cardElement();
    if (!el || !el._iframe) {
      return Promise.resolve({
        error: {
          type: "validation_error",
          code: "incomplete",
          message: "Please mount a Payment Element before calling elements.submit().",
        },
      });
    }
    return el._request("validate").then(function (result) {
      if (result && result.error) return { error: result.error };
      el._group._submitted = true;
      return {};
    });
  };

  // ------------------------------------------------------------------ Stripe instance

  function StripeInstance(key, options) {
    this._key = key;
    this._options = options || {};
  }

  StripeInstance.prototype.elements = function (options) {
    return new Elements(this, options);
  };

  StripeInstance.prototype.retrievePaymentIntent = function (clientSecret) {
    var id;
    try {
      id = piIdFromSecret(clientSecret);
    } catch (e) {
      return Promise.reject(e);
    }
    return api(this._key, "GET", "/v1/payment_intents/" + encodeURIComponent(id), {
      client_secret: clientSecret,
    }).then(function (body) {
      if (body.error) return { error: body.error };
      return { paymentIntent: body };
    });
  };

  /* After a confirm: run 3-D Secure if asked, then answer like Stripe.js (or redirect). */
  StripeInstance.prototype._finish = function (result, ctx) {
    var self = this;
    if (!result) return Promise.resolve({ error: connectionError() });
    if (result.error) return Promise.resolve({ error: result.error });
    var pi = result.paymentIntent;
    if (pi.status === "requires_action" && ctx.handleActions !== false) {
      var url = nextActionUrl(pi);
      if (!url) {
        return Promise.resolve({
          error: {
            type: "invalid_request_error",
            code: "payment_intent_unexpected_state",
            message: "The Stripe emulator cannot handle this next_action.",
            payment_intent: pi,
          },
        });
      }
      if (ctx.redirect === "always") {
        var u = new URL(url, location.href);
        u.searchParams.set("key", this._key);
        if (ctx.returnUrl) u.searchParams.set("return_url", ctx.returnUrl);
        navigate(u.toString());
        return new Promise(function () {}); // the page is going away
      }
      return this._challenge(pi, url, ctx.clientSecret);
    }
    return this._settled(pi, ctx);
  };

  StripeInstance.prototype._challenge = function (pi, url, clientSecret) {
    var self = this;
    return openChallenge(url, this._key)
      .then(function (outcome) {
        if (outcome.closed) {
          // Closing the modal abandons the authentication, as on Stripe.
          return api(self._key, "POST", "/v1/payment_intents/" + encodeURIComponent(pi.id) +
            "/authenticate", { client_secret: clientSecret, result: "fail" });
        }
        return null;
      })
      .then(function () {
        return self.retrievePaymentIntent(clientSecret);
      })
      .then(function (res) {
        if (res.error) return { error: res.error };
        var after = res.paymentIntent;
        if (["succeeded", "processing", "requires_capture"].indexOf(after.status) !== -1) {
          return { paymentIntent: after };
        }
        return { error: authError(after) };
      });
  };

  StripeInstance.prototype._settled = function (pi, ctx) {
    if (pi.status === "requires_payment_method" && pi.last_payment_error) {
      return Promise.resolve({ error: authError(pi) });
    }
    if (ctx.redirect === "always" && ctx.returnUrl) {
      navigate(
        withParams(ctx.returnUrl, {
          payment_intent: pi.id,
          payment_intent_client_secret: ctx.clientSecret,
          redirect_status: redirectStatus(pi),
        })
      );
      return new Promise(function () {});
    }
    return Promise.resolve({ paymentIntent: pi });
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

  StripeInstance.prototype.confirmPayment = function (options) {
    var self = this;
    options = options || {};
    var elements = options.elements;
    if (!elements || !(elements instanceof Elements)) {
      return Promise.reject(
        IntegrationError("Invalid value for confirmPayment: elements should be an Elements group.")
      );
    }
    var clientSecret = options.clientSecret || elements._options.clientSecret;
    var confirmParams = options.confirmParams || {};
    var redirect = options.redirect || "always";
    try {
      piIdFromSecret(clientSecret);
    } catch (e) {
      return Promise.reject(e);
    }
    if (redirect !== "always" && redirect !== "if_required") {
      return Promise.reject(IntegrationError('redirect must be "always" or "if_required".'));
    }
    if (redirect === "always" && !confirmParams.return_url) {
      return Promise.reject(
        IntegrationError(
          "stripe.confirmPayment(): the `confirmParams.return_url` argument is required " +
            "unless passing `redirect: 'if_required'`"
        )
      );
    }
    var el = elements._cardElement();
    if (!el || !el._iframe) {
      return Promise.reject(
        IntegrationError("stripe.confirmPayment(): the Payment Element must be mounted first.")
      );
    }
    var pmData = confirmParams.payment_method_data || {};
    return el
      ._request("confirm", {
        clientSecret: clientSecret,
        confirmParams: confirmFields(confirmParams),
        billingDetails: pmData.billing_details || null,
      })
      .then(function (result) {
        return self._finish(result, {
          clientSecret: clientSecret,
          redirect: redirect,
          returnUrl: confirmParams.return_url,
        });
      });
  };

  StripeInstance.prototype.confirmCardPayment = function (clientSecret, data, options) {
    var self = this;
    data = data || {};
    var handleActions = !(options && options.handleActions === false);
    var id;
    try {
      id = piIdFromSecret(clientSecret);
    } catch (e) {
      return Promise.reject(e);
    }
    var pm = data.payment_method;
    var ctx = { clientSecret: clientSecret, redirect: "if_required", handleActions: handleActions };
    var pending;
    if (pm && pm.card instanceof Element) {
      pending = pm.card._request("confirm", {
        clientSecret: clientSecret,
        confirmParams: confirmFields(data),
        billingDetails: pm.billing_details || null,
      });
    } else if (pm && typeof pm === "object" && pm.card) {
      return Promise.reject(
        IntegrationError("payment_method.card must be a mounted card or payment Element.")
      );
    } else {
      // An existing PaymentMethod id (or the one already on the intent): no card data involved.
      var params = confirmFields(data);
      params.client_secret = clientSecret;
      if (typeof pm === "string") params.payment_method = pm;
      pending = api(this._key, "POST", "/v1/payment_intents/" + encodeURIComponent(id) +
        "/confirm", params).then(function (body) {
        return body.error ? { error: body.error } : { paymentIntent: body };
      });
    }
    return pending.then(function (result) {
      return self._finish(result, ctx);
    });
  };

  StripeInstance.prototype.handleNextAction = function (options) {
    var self = this;
    var clientSecret = (options || {}).clientSecret;
    return this.retrievePaymentIntent(clientSecret).then(function (res) {
      if (res.error) return res;
      return self._finish(res, { clientSecret: clientSecret, redirect: "if_required" });
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
      el = options.elements._cardElement();
      billing = ((options.params || {}).billing_details) || null;
    } else if (options.card instanceof Element) {
      el = options.card;
      billing = options.billing_details || null;
    }
    if (!el || !el._iframe) {
      return Promise.reject(IntegrationError("createPaymentMethod needs a mounted card Element."));
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
