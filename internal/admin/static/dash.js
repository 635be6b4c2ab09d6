// Refreshes the live sections of the dashboard every 5 seconds from the
// same page (GET /, same origin); forms and the flash are left alone.
(function () {
  "use strict";
  var every = 5000;
  function refresh() {
    if (document.hidden) { return; }
    fetch("/", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error("status " + r.status); }
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live]").forEach(function (el) {
        var fresh = doc.getElementById(el.id);
        if (!fresh) { return; }
        // Keep what is being typed into a create form.
        var active = document.activeElement;
        if (active && el.contains(active) && active.tagName === "INPUT") { return; }
        el.replaceWith(document.importNode(fresh, true));
      });
    }).catch(function () { /* the next tick tries again */ });
  }
  setInterval(refresh, every);
})();
