// The audit page's "Export CSV" link: download through fetch() to show progress while the
// export streams, then save the file. Without this file (or without streams) the plain link
// downloads the same CSV.
(function () {
  "use strict";

  const QUOTE = 0x22;
  const NEWLINE = 0x0a;
  const numbers = new Intl.NumberFormat("en-US");

  // Counts CSV records, not lines: a newline inside a quoted cell is part of that cell.
  // Bytes are enough: UTF-8 never puts 0x22 or 0x0a inside a multi-byte character.
  function recordCounter() {
    let quoted = false;
    let records = 0;
    return function count(bytes) {
      for (let i = 0; i < bytes.length; i++) {
        const b = bytes[i];
        if (b === QUOTE) quoted = !quoted;
        else if (b === NEWLINE && !quoted) records++;
      }
      return records;
    };
  }

  function filename(response) {
    const header = response.headers.get("Content-Disposition") || "";
    const match = /filename="([^"]+)"/.exec(header);
    return match ? match[1] : "gatekeeper-audit.csv";
  }

  function save(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
  }

  async function download(link, status) {
    const response = await fetch(link.href, { credentials: "same-origin" });
    if (!response.ok) {
      const text = (await response.text()).trim();
      throw new Error(text || "the server answered " + response.status);
    }
    const reader = response.body.getReader();
    const count = recordCounter();
    const chunks = [];
    let rows = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      // The first record is the header.
      rows = Math.max(0, count(value) - 1);
      status.textContent = numbers.format(rows) + " rows so far…";
    }
    save(new Blob(chunks, { type: "text/csv" }), filename(response));
    return rows;
  }

  document.addEventListener("click", function (event) {
    const link = event.target.closest("a[data-export]");
    if (!link || !window.ReadableStream || !window.fetch) return;
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if (link.getAttribute("aria-disabled") === "true") return;
    const status = link.parentElement.querySelector("[data-export-status]");
    link.setAttribute("aria-disabled", "true");
    status.classList.remove("failed");
    status.textContent = "Starting the export…";
    download(link, status)
      .then(function (rows) {
        status.textContent = "Done: " + numbers.format(rows) + " rows saved.";
      })
      .catch(function (error) {
        status.classList.add("failed");
        status.textContent = "The export failed: " + error.message;
      })
      .finally(function () {
        link.removeAttribute("aria-disabled");
      });
  });
})();
