// Dark Halo Scope: the click handlers of Great Expectations' Data Docs, without inline script.
// /dhs-docs serves the pages under a Content-Security-Policy that runs no inline script or
// onclick attribute; pipeline/gate/data_docs.py moves GX's inline scripts into files and turns
// each onclick="fn('arg')" into data-dhs-onclick / data-dhs-onclick-arg, bound here. Only GX's
// own functions are called (by name, never evaluated).
(function () {
  "use strict";
  var ALLOWED = ["clearTableFilters", "hideSucceededValidations", "showAllValidations"];
  function bind() {
    var els = document.querySelectorAll("[data-dhs-onclick]");
    Array.prototype.forEach.call(els, function (el) {
      var name = el.getAttribute("data-dhs-onclick");
      if (ALLOWED.indexOf(name) < 0) return;
      el.addEventListener("click", function (event) {
        var fn = window[name];
        if (typeof fn !== "function") return;
        if (el.hasAttribute("data-dhs-onclick-arg")) fn(el.getAttribute("data-dhs-onclick-arg"));
        else fn();
        if (el.tagName === "A") event.preventDefault();
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", bind);
  else bind();
})();
