// Drill-down filters. The table reads fine without this script; with it, rows are hidden by the
// chosen filters and the choice is kept in the URL fragment (#show:failed=1&suite=golden), so a
// filtered view can be linked to.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#examples tbody tr"));
  var shown = document.getElementById("shown");
  var PREFIX = "#show:";

  function read() {
    var params = new URLSearchParams(location.hash.indexOf(PREFIX) === 0 ? location.hash.slice(PREFIX.length) : "");
    form.elements.failed.checked = params.get("failed") === "1";
    form.elements.regressed.checked = params.get("regressed") === "1";
    form.elements.suite.value = params.get("suite") || "";
    form.elements.slice.value = params.get("slice") || "";
  }

  function apply(remember) {
    var failed = form.elements.failed.checked, regressed = form.elements.regressed.checked;
    var suite = form.elements.suite.value, slice = form.elements.slice.value, n = 0;
    rows.forEach(function (row) {
      var show = (!failed || row.dataset.failed === "1") && (!regressed || row.dataset.regressed === "1") &&
        (!suite || row.dataset.suite === suite) &&
        (!slice || (" " + row.dataset.slices + " ").indexOf(" " + slice + " ") >= 0);
      row.hidden = !show;
      if (show) n += 1;
    });
    shown.textContent = String(n);
    if (remember) {
      var params = new URLSearchParams();
      if (failed) params.set("failed", "1");
      if (regressed) params.set("regressed", "1");
      if (suite) params.set("suite", suite);
      if (slice) params.set("slice", slice);
      try {
        history.replaceState(null, "", params.toString() ? PREFIX + params.toString() : location.pathname);
      } catch (e) { /* some file:// contexts refuse it; the filter still applies */ }
    }
  }

  form.hidden = false;
  form.addEventListener("change", function () { apply(true); });
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  read();
  apply(false);
  // a link to a filtered view opens at the examples it filters
  if (location.hash.indexOf(PREFIX) === 0) document.getElementById("drilldown").scrollIntoView();
}());
