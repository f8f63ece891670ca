/* What every element iframe shares: talking to the merchant page (postMessage to its origin
 * only), appearance variables, height reports, and focus/blur/escape events.
 *
 * A frame script calls StripeEmuFrame.start({init, update, focus, clear, requests}) and gets
 * messages from the page: "init" (key, options, appearance; the frame is "ready" after
 * init, or, when init answers a promise, once it resolves: null, or an error sent as
 * "loaderror"), "update", "focus", "blur",
 * "clear", and requests ({type, reqId, ...}) answered with a "result". */
(function () {
  "use strict";

  var body = document.body;
  var parentOrigin = body.getAttribute("data-parent-origin");
  var frameId = body.getAttribute("data-frame");
  var state = { key: null, options: {} };

  function send(message) {
    message.__stripeEmu = true;
    message.frame = frameId;
    window.parent.postMessage(message, parentOrigin);
  }

  var VARIABLES = [
    "colorPrimary",
    "colorBackground",
    "colorText",
    "colorDanger",
    "fontFamily",
    "fontSizeBase",
    "borderRadius",
    "spacingUnit",
  ];

  function applyAppearance(appearance) {
    if (!appearance) return;
    var root = document.documentElement.style;
    if (appearance.theme === "night") {
      root.setProperty("--colorBackground", "#30313d");
      root.setProperty("--colorText", "#ffffff");
      root.setProperty("--colorBorder", "#424353");
    } else if (appearance.theme === "flat") {
      root.setProperty("--colorBorder", "#f6f8fa");
    }
    var vars = appearance.variables || {};
    VARIABLES.forEach(function (name) {
      // Only plain CSS values: nothing that could close the declaration.
      if (typeof vars[name] === "string" && /^[^;{}<>]*$/.test(vars[name])) {
        root.setProperty("--" + name, vars[name]);
      }
    });
  }

  var root = document.getElementById("root");
  var lastHeight = 0;
  function reportHeight() {
    var h = Math.ceil(root.getBoundingClientRect().height);
    if (h && h !== lastHeight) {
      lastHeight = h;
      send({ type: "resize", height: h });
    }
  }

  /* One /v1 call with the publishable key; answers the parsed body or {error}. */
  function api(method, path, params) {
    var url = path;
    var init = {
      method: method,
      headers: { Authorization: "Bearer " + state.key },
      credentials: "omit",
    };
    if (method === "GET") {
      if (params) url += "?" + window.StripeEmuCard.formEncode(params);
    } else {
      init.headers["Content-Type"] = "application/x-www-form-urlencoded";
      init.body = window.StripeEmuCard.formEncode(params || {});
    }
    return fetch(url, init).then(
      function (resp) {
        return resp.json().catch(function () {
          return { error: { type: "api_error", message: "Unexpected response from the API." } };
        });
      },
      function () {
        return {
          error: {
            type: "api_connection_error",
            message: "We could not connect to the payment service. Please check your connection.",
          },
        };
      }
    );
  }

  function start(handlers) {
    function ready() {
      send({ type: "ready" });
      if (handlers.changed) handlers.changed();
      reportHeight();
    }

    var hasFocus = false;
    document.addEventListener("focusin", function () {
      if (!hasFocus) {
        hasFocus = true;
        send({ type: "focus" });
      }
    });
    document.addEventListener("focusout", function (e) {
      if (!e.relatedTarget) {
        hasFocus = false;
        send({ type: "blur" });
      }
    });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape") send({ type: "escape" });
      // Enter in a field submits the merchant's form, as in a field of the page itself.
      if (e.key === "Enter" && e.target.tagName === "INPUT") {
        e.preventDefault();
        send({ type: "enter" });
      }
    });
    Array.prototype.forEach.call(document.querySelectorAll("form"), function (f) {
      f.addEventListener("submit", function (e) {
        e.preventDefault();
      });
    });
    if (window.ResizeObserver) new ResizeObserver(reportHeight).observe(root);
    window.addEventListener("load", reportHeight);

    window.addEventListener("message", function (event) {
      if (event.source !== window.parent || event.origin !== parentOrigin) return;
      var m = event.data;
      if (!m || m.__stripeEmu !== true) return;
      function reply(result) {
        send({ type: "result", reqId: m.reqId, result: result });
      }
      switch (m.type) {
        case "init":
          state.key = typeof m.key === "string" ? m.key : null;
          applyAppearance(m.appearance);
          mergeOptions(m.options);
          var loading = handlers.init ? handlers.init(m) : null;
          if (loading && typeof loading.then === "function") {
            // The frame loads something first (a Customer Session's saved cards): ready
            // after it, or the element's loaderror when it answers an error.
            loading.then(function (error) {
              if (error) send({ type: "loaderror", error: error });
              else ready();
            });
          } else {
            ready();
          }
          break;
        case "update":
          if (m.appearance) applyAppearance(m.appearance);
          if (m.options) mergeOptions(m.options);
          if (handlers.update) handlers.update(m);
          if (handlers.changed) handlers.changed();
          break;
        case "focus":
          if (handlers.focus) handlers.focus();
          break;
        case "blur":
          if (document.activeElement) document.activeElement.blur();
          break;
        case "clear":
          if (handlers.clear) handlers.clear();
          if (handlers.changed) handlers.changed();
          break;
        default:
          var requests = handlers.requests || {};
          // Own names only: a message typed "toString" is no request.
          var handler = Object.prototype.hasOwnProperty.call(requests, m.type) && requests[m.type];
          if (handler) {
            Promise.resolve(handler(m)).then(reply, function () {
              reply({ error: { type: "api_error", message: "Something went wrong." } });
            });
          }
      }
    });
    // Tell the page we exist; it answers with "init" (key, options, appearance).
    send({ type: "loaded" });
  }

  function mergeOptions(opts) {
    Object.keys(opts || {}).forEach(function (k) {
      state.options[k] = opts[k];
    });
  }

  window.StripeEmuFrame = {
    state: state,
    send: send,
    api: api,
    start: start,
    reportHeight: reportHeight,
    applyAppearance: applyAppearance,
    kind: body.getAttribute("data-kind"),
    group: body.getAttribute("data-group"),
  };
})();
