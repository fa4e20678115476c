// biobench leaderboard site: table sorting, row filters and the comparison picker.
// No dependencies and no network: everything works from files on disk.
"use strict";

// Sort a table's body by one column. Cells carry their sort key in data-v (a number for
// numeric columns); empty keys (missing values) always go last, whatever the direction.
function sortTable(table, column, type, descending) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = (row) => {
    const cell = row.cells[column];
    const v = cell ? (cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent.trim()) : "";
    return v;
  };
  rows.sort((ra, rb) => {
    const a = key(ra), b = key(rb);
    if (a === "" && b === "") return 0;
    if (a === "") return 1;
    if (b === "") return -1;
    let order;
    if (type === "num") {
      order = parseFloat(a) - parseFloat(b);
    } else {
      order = a.localeCompare(b, undefined, { numeric: true });
    }
    return descending ? -order : order;
  });
  rows.forEach((row) => body.appendChild(row));
}

function setupSorting() {
  document.querySelectorAll("table.sortable").forEach((table) => {
    const headers = table.tHead ? Array.from(table.tHead.rows[0].cells) : [];
    headers.forEach((th, column) => {
      th.classList.add("sort");
      th.setAttribute("role", "button");
      th.tabIndex = 0;
      const activate = (event) => {
        if (event.target.closest("a")) return; // a link in a header keeps its meaning
        const type = th.dataset.type || "text";
        // First click: best first for metrics (numbers descending, ↓ metrics ascending),
        // A to Z for text; each further click reverses.
        let descending;
        if (th.dataset.dir) {
          descending = th.dataset.dir !== "desc";
        } else {
          descending = type === "num" && !th.textContent.includes("↓");
        }
        headers.forEach((h) => { delete h.dataset.dir; h.removeAttribute("aria-sort"); });
        th.dataset.dir = descending ? "desc" : "asc";
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        sortTable(table, column, type, descending);
      };
      th.addEventListener("click", activate);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); activate(e); } });
    });
  });
}

// Filters: each <select data-filter="attr"> keeps the rows whose data-attr equals its value.
function setupFilters() {
  document.querySelectorAll("form.filters").forEach((form) => {
    const table = document.getElementById(form.dataset.table);
    if (!table) return;
    const selects = Array.from(form.querySelectorAll("select[data-filter]"));
    const counter = form.querySelector("[data-count-for]");
    const apply = () => {
      let shown = 0, total = 0;
      Array.from(table.tBodies[0].rows).forEach((row) => {
        total += 1;
        const keep = selects.every((s) => s.value === "" || row.dataset[s.dataset.filter] === s.value);
        row.hidden = !keep;
        if (keep) shown += 1;
      });
      if (counter) counter.textContent = shown === total ? `${total} rows` : `${shown} of ${total} rows`;
    };
    selects.forEach((s) => s.addEventListener("change", apply));
    form.addEventListener("submit", (e) => e.preventDefault());
    apply();
  });
}

// The comparison picker: pages exist for the pairs listed in data-pairs ("A--B": href), in
// both orientations; the page opened is A vs B as chosen (never B vs A: signs would flip).
function setupPicker() {
  document.querySelectorAll("form.compare-picker").forEach((form) => {
    const pairs = JSON.parse(form.dataset.pairs || "{}");
    const message = form.querySelector(".picker-message");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const a = form.elements.a.value, b = form.elements.b.value;
      if (a === b) { message.textContent = "Choose two different configurations."; return; }
      const href = pairs[`${a}--${b}`];
      if (href) { window.location.href = href; return; }
      message.textContent = "No page for this pair; run: biobench compare " + a + " " + b;
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupSorting();
  setupFilters();
  setupPicker();
});
