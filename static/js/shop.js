// Small progressive enhancements; every page works without them.
document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
  select.addEventListener("change", function () { select.form.requestSubmit(); });
  // This script is deferred: a choice made before it ran had no handler to send it. The
  // HTML marks the current value (and autocomplete="off" keeps the browser from restoring
  // an old choice), so a different one here was picked by the shopper: send it now.
  var current = Array.prototype.some.call(select.options, function (o) { return o.defaultSelected; });
  if (current && !select.options[select.selectedIndex].defaultSelected) { select.form.requestSubmit(); }
});

// The phone header's menu button: shows and hides the rest of the header (the CSS keeps it
// closed on small screens only once this script has shown the button).
(function () {
  var toggle = document.querySelector(".menu-toggle");
  var menu = document.getElementById("site-menu");
  if (!toggle || !menu) { return; }
  document.documentElement.classList.add("has-menu");
  toggle.hidden = false;
  function set(open) {
    toggle.setAttribute("aria-expanded", String(open));
    menu.classList.toggle("open", open);
  }
  toggle.addEventListener("click", function () {
    set(toggle.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
      set(false);
      toggle.focus();
    }
  });
})();

// A <details data-collapse-below="720"> is open in the HTML (so it shows without
// JavaScript and on wide screens) and starts closed on screens narrower than that.
document.querySelectorAll("details[data-collapse-below]").forEach(function (details) {
  var below = parseInt(details.getAttribute("data-collapse-below"), 10) || 720;
  if (window.matchMedia("(max-width: " + below + "px)").matches) { details.open = false; }
});
