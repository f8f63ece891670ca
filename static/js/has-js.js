// Loaded in <head>, before the page is drawn: marks the page as having JavaScript, so
// shop.css shows .needs-js parts and hides their .no-js alternatives (no flash of either).
document.documentElement.classList.add("js");
