// Click a column header of a table.sortable to sort its rows by that column (again to reverse).
// Numeric cells sort by their data-value (the exact number); others by their text. The page
// is complete without it: rows start in the order the analysis wrote them (by q-value).
(function () {
  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.classList.add("sort-head");
      th.setAttribute("title", "click to sort");
      var asc = true;
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var ca = a.cells[col], cb = b.cells[col];
          var va = ca && ca.hasAttribute("data-value") ? parseFloat(ca.getAttribute("data-value")) : NaN;
          var vb = cb && cb.hasAttribute("data-value") ? parseFloat(cb.getAttribute("data-value")) : NaN;
          var r;
          if (!isNaN(va) || !isNaN(vb)) {
            // Missing numbers sort last.
            r = isNaN(va) ? 1 : isNaN(vb) ? -1 : va - vb;
          } else {
            r = (ca ? ca.textContent : "").localeCompare(cb ? cb.textContent : "");
          }
          return asc ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
        asc = !asc;
      });
    });
  });
})();
