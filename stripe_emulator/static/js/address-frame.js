/* The Address Element's frame: name, country, address lines, city, state, postal code (and a
 * phone number when asked).  Change events carry {complete, value: {name, address}};
 * elements.submit() asks it to validate ("validate"), address.getValue() asks "getValue". */
(function () {
  "use strict";

  var C = window.StripeEmuCard;
  var F = window.StripeEmuFrame;

  var US_STATES = [
    ["AL", "Alabama"], ["AK", "Alaska"], ["AZ", "Arizona"], ["AR", "Arkansas"],
    ["CA", "California"], ["CO", "Colorado"], ["CT", "Connecticut"], ["DE", "Delaware"],
    ["DC", "District of Columbia"], ["FL", "Florida"], ["GA", "Georgia"], ["HI", "Hawaii"],
    ["ID", "Idaho"], ["IL", "Illinois"], ["IN", "Indiana"], ["IA", "Iowa"], ["KS", "Kansas"],
    ["KY", "Kentucky"], ["LA", "Louisiana"], ["ME", "Maine"], ["MD", "Maryland"],
    ["MA", "Massachusetts"], ["MI", "Michigan"], ["MN", "Minnesota"], ["MS", "Mississippi"],
    ["MO", "Missouri"], ["MT", "Montana"], ["NE", "Nebraska"], ["NV", "Nevada"],
    ["NH", "New Hampshire"], ["NJ", "New Jersey"], ["NM", "New Mexico"], ["NY", "New York"],
    ["NC", "North Carolina"], ["ND", "North Dakota"], ["OH", "Ohio"], ["OK", "Oklahoma"],
    ["OR", "Oregon"], ["PA", "Pennsylvania"], ["PR", "Puerto Rico"], ["RI", "Rhode Island"],
    ["SC", "South Carolina"], ["SD", "South Dakota"], ["TN", "Tennessee"], ["TX", "Texas"],
    ["UT", "Utah"], ["VT", "Vermont"], ["VA", "Virginia"], ["WA", "Washington"],
    ["WV", "West Virginia"], ["WI", "Wisconsin"], ["WY", "Wyoming"],
  ];
  var AREAS = {
    US: { label: "State", list: US_STATES },
    CA: {
      label: "Province",
      list: [
        ["AB", "Alberta"], ["BC", "British Columbia"], ["MB", "Manitoba"],
        ["NB", "New Brunswick"], ["NL", "Newfoundland and Labrador"], ["NS", "Nova Scotia"],
        ["NT", "Northwest Territories"], ["NU", "Nunavut"], ["ON", "Ontario"],
        ["PE", "Prince Edward Island"], ["QC", "Quebec"], ["SK", "Saskatchewan"],
        ["YT", "Yukon"],
      ],
    },
    AU: {
      label: "State",
      list: [
        ["ACT", "Australian Capital Territory"], ["NSW", "New South Wales"],
        ["NT", "Northern Territory"], ["QLD", "Queensland"], ["SA", "South Australia"],
        ["TAS", "Tasmania"], ["VIC", "Victoria"], ["WA", "Western Australia"],
      ],
    },
  };
  // Countries whose addresses need no postal code (Ireland's Eircode is optional).
  var NO_POSTAL = ["IE", "HK", "AE"];
  var INCOMPLETE = "This field is incomplete.";

  function $(name) {
    return document.querySelector('[name="' + name + '"]');
  }
  var inputs = {
    name: $("name"),
    country: $("country"),
    addressLine1: $("addressLine1"),
    addressLine2: $("addressLine2"),
    locality: $("locality"),
    administrativeArea: $("administrativeArea"),
    postalCode: $("postalCode"),
    phone: $("phone"),
  };
  var ORDER = [
    "name", "country", "addressLine1", "addressLine2", "locality", "administrativeArea",
    "postalCode", "phone",
  ];
  var allCountries = Array.prototype.map.call(inputs.country.options, function (o) {
    return [o.value, o.textContent];
  });
  var touched = {};
  var lastSent = null;
  var defaultsApplied = false;

  function options() {
    return F.state.options;
  }

  function country() {
    return inputs.country.value;
  }

  function zipLabel() {
    return country() === "US" ? "ZIP" : "Postal code";
  }

  function phoneShown() {
    return (options().fields || {}).phone === "always";
  }

  function phoneRequired() {
    return phoneShown() && ((options().validation || {}).phone || {}).required === "always";
  }

  function fieldError(code, message) {
    return { type: "validation_error", code: code, message: message };
  }

  /* {complete, empty, error} for each field shown. */
  function checks() {
    var res = {};
    function required(field, code) {
      var v = inputs[field].value.trim();
      res[field] = {
        empty: !v,
        complete: !!v,
        incompleteError: v ? null : fieldError(code, INCOMPLETE),
      };
    }
    required("name", "incomplete_name");
    required("addressLine1", "incomplete_address_line1");
    res.addressLine2 = { empty: !inputs.addressLine2.value.trim(), complete: true };
    required("locality", "incomplete_locality");
    if (AREAS[country()]) required("administrativeArea", "incomplete_administrative_area");
    if (NO_POSTAL.indexOf(country()) === -1) {
      var v = inputs.postalCode.value.trim();
      var r = C.checkPostal(v, country());
      var ok = v.length > 0 && r.complete;
      res.postalCode = { empty: !v, complete: ok };
      if (!ok) {
        res.postalCode.incompleteError = fieldError(
          v ? "invalid_zip" : "incomplete_zip",
          "Your " + (country() === "US" ? "ZIP" : "postal code") +
            (v ? " is invalid." : " is incomplete.")
        );
      }
    }
    if (phoneShown()) {
      var p = inputs.phone.value.trim();
      var digits = p.replace(/\D/g, "");
      var phoneOk = p ? digits.length >= 7 && /^[+\d\s().\-]+$/.test(p) : !phoneRequired();
      res.phone = { empty: !p, complete: phoneOk };
      if (!phoneOk) {
        res.phone.incompleteError = fieldError(
          p ? "invalid_phone" : "incomplete_phone",
          p ? "Your phone number is invalid." : INCOMPLETE
        );
      }
    }
    return res;
  }

  function render(all) {
    var res = checks();
    var first = null;
    var firstField = null;
    ORDER.forEach(function (field) {
      var r = res[field];
      var el = inputs[field];
      var msg = document.getElementById("Field-" + field + "Error");
      var err = r && (all || touched[field]) && !r.complete ? r.incompleteError : null;
      if (el) el.setAttribute("aria-invalid", err ? "true" : "false");
      if (msg) msg.textContent = err ? err.message : "";
      if (err && !first) {
        first = err;
        firstField = field;
      }
    });
    var fields = Object.keys(res);
    return {
      error: first,
      firstField: firstField,
      complete: fields.every(function (f) {
        return res[f].complete;
      }),
      empty: fields.every(function (f) {
        return res[f].empty;
      }),
    };
  }

  function value() {
    function v(field) {
      return inputs[field].value.trim();
    }
    var out = {
      name: v("name"),
      address: {
        line1: v("addressLine1"),
        line2: v("addressLine2") || null,
        city: v("locality"),
        state: AREAS[country()] ? v("administrativeArea") : null,
        postal_code: NO_POSTAL.indexOf(country()) === -1 ? v("postalCode") : v("postalCode") || null,
        country: country(),
      },
    };
    if (phoneShown()) out.phone = v("phone");
    return out;
  }

  function changeEvent(all) {
    var s = render(all);
    var event = {
      elementType: "address",
      elementMode: options().mode,
      complete: s.complete,
      empty: s.empty,
      isNewAddress: false,
      value: value(),
    };
    return { event: event, state: s };
  }

  function changed(all) {
    var c = changeEvent(all);
    var serial = JSON.stringify(c.event);
    if (serial !== lastSent) {
      lastSent = serial;
      F.send({ type: "change", event: c.event });
    }
    return c;
  }

  // ------------------------------------------------------------------ country-dependent fields

  function setAreas() {
    var area = AREAS[country()];
    var field = document.querySelector('[data-field="administrativeArea"]');
    var select = inputs.administrativeArea;
    var keep = select.value;
    field.hidden = !area;
    select.innerHTML = "";
    if (area) {
      document.getElementById("Field-administrativeAreaLabel").textContent = area.label;
      var blank = document.createElement("option");
      blank.value = "";
      blank.textContent = "Select";
      select.appendChild(blank);
      area.list.forEach(function (pair) {
        var o = document.createElement("option");
        o.value = pair[0];
        o.textContent = pair[1];
        select.appendChild(o);
      });
      select.value = keep;
      if (select.value !== keep) select.value = "";
    }
    var postalField = document.querySelector('[data-field="postalCode"]');
    postalField.hidden = NO_POSTAL.indexOf(country()) !== -1;
    document.getElementById("Field-postalCodeLabel").textContent = zipLabel();
  }

  /* Offer only options.allowedCountries (in the given order of our list). */
  function setCountries() {
    var allowed = options().allowedCountries;
    var select = inputs.country;
    var keep = select.value;
    var list = allCountries;
    if (Array.isArray(allowed) && allowed.length) {
      var codes = allowed.map(function (c) {
        return String(c).toUpperCase();
      });
      list = codes.map(function (code) {
        var known = allCountries.filter(function (pair) {
          return pair[0] === code;
        })[0];
        return known || [code, code];
      });
    }
    select.innerHTML = "";
    list.forEach(function (pair) {
      var o = document.createElement("option");
      o.value = pair[0];
      o.textContent = pair[1];
      select.appendChild(o);
    });
    select.value = keep;
    if (select.value !== keep) select.value = list[0][0];
    document.querySelector('[data-field="country"]').hidden = list.length === 1;
  }

  function applyOptions() {
    var opts = options();
    // The fields come disabled (see address_frame.html): usable once the options are here.
    ORDER.forEach(function (field) {
      inputs[field].disabled = false;
    });
    setCountries();
    document.querySelector('[data-field="phone"]').hidden = !phoneShown();
    var mode = opts.mode === "billing" ? "billing" : "shipping";
    [
      ["name", "name"], ["addressLine1", "address-line1"], ["addressLine2", "address-line2"],
      ["locality", "address-level2"], ["administrativeArea", "address-level1"],
      ["postalCode", "postal-code"], ["country", "country"], ["phone", "tel"],
    ].forEach(function (pair) {
      inputs[pair[0]].setAttribute("autocomplete", mode + " " + pair[1]);
    });
    var defaults = opts.defaultValues || {};
    if (!defaultsApplied) {
      defaultsApplied = true;
      var a = defaults.address || {};
      if (a.country) {
        var code = String(a.country).toUpperCase();
        if (Array.prototype.some.call(inputs.country.options, function (o) {
          return o.value === code;
        })) {
          inputs.country.value = code;
        }
      }
      setAreas();
      var map = {
        name: defaults.name,
        phone: defaults.phone,
        addressLine1: a.line1,
        addressLine2: a.line2,
        locality: a.city,
        administrativeArea: a.state,
        postalCode: a.postal_code,
      };
      Object.keys(map).forEach(function (field) {
        if (typeof map[field] === "string" && !inputs[field].value) inputs[field].value = map[field];
      });
    } else {
      setAreas();
    }
  }

  ORDER.forEach(function (field) {
    var el = inputs[field];
    el.addEventListener(el.tagName === "SELECT" ? "change" : "input", function () {
      if (field === "country") {
        inputs.administrativeArea.value = "";
        setAreas();
      }
      if (el.tagName === "SELECT") touched[field] = true;
      changed(false);
    });
    el.addEventListener("blur", function () {
      if (el.value) touched[field] = true;
      changed(false);
    });
  });

  F.start({
    init: applyOptions,
    update: applyOptions,
    changed: function () {
      changed(false);
    },
    focus: function () {
      inputs.name.focus();
    },
    clear: function () {
      ORDER.forEach(function (f) {
        if (f !== "country" && inputs[f]) inputs[f].value = "";
      });
      touched = {};
    },
    requests: {
      validate: function () {
        var c = changed(true);
        if (c.state.error) {
          inputs[c.state.firstField].focus();
          return { error: c.state.error };
        }
        return { value: c.event.value };
      },
      getValue: function () {
        var c = changeEvent(false);
        return { complete: c.event.complete, isNewAddress: false, value: c.event.value };
      },
    },
  });
})();
