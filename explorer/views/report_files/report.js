for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("th").forEach((header, column) => header.addEventListener("click", () => {
    const body = table.tBodies[0];
    const descending = header.dataset.order !== "descending";
    table.querySelectorAll("th").forEach((other) => delete other.dataset.order);
    header.dataset.order = descending ? "descending" : "ascending";
    const key = (row) => row.cells[column].dataset.value;
    const rows = Array.from(body.rows).sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const numeric = x !== "" && y !== "" && !isNaN(x) && !isNaN(y);
      const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach((row) => body.appendChild(row));
  }));
}
