// Text and status filter for long tables (the sample browser). The page is complete
// without it: the filter bar stays hidden and every row is visible.
(function () {
  document.querySelectorAll("[data-filter-for]").forEach(function (bar) {
    var table = document.getElementById(bar.getAttribute("data-filter-for"));
    if (!table || !table.tBodies.length) return;
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    // Lower-cased once: re-reading textContent of thousands of rows per keystroke is slow.
    var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    var box = bar.querySelector("input");
    var status = bar.querySelector("select");
    var count = bar.querySelector(".filter-count");
    function apply() {
      var q = box ? box.value.trim().toLowerCase() : "";
      var st = status ? status.value : "";
      var shown = 0;
      rows.forEach(function (r, i) {
        var ok = (!q || texts[i].indexOf(q) !== -1) && (!st || r.getAttribute("data-status") === st);
        r.hidden = !ok;
        if (ok) shown++;
      });
      if (count) count.textContent = shown + " of " + rows.length + " rows shown";
    }
    var timer = null;
    if (box) box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
    if (status) status.addEventListener("change", apply);
    bar.hidden = false;
    apply();
  });
})();
