// Gatekeeper's small enhancements: live countdowns, keyboard shortcuts, the help dialog.
// Everything works without this file; it only saves time.
(function () {
  "use strict";

  function phrase(seconds) {
    const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
    for (const [name, size] of units) {
      if (seconds >= size) {
        const n = Math.floor(seconds / size);
        return n + " " + name + (n === 1 ? "" : "s");
      }
    }
    return "0 seconds";
  }

  function tick() {
    const now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      const at = Date.parse(el.getAttribute("datetime"));
      if (Number.isNaN(at)) return;
      const seconds = Math.round((at - now) / 1000);
      const past = el.getAttribute("data-past");
      el.textContent = seconds >= 0 ? "in " + phrase(seconds)
        : (past ? past + " " : "") + phrase(-seconds) + " ago";
      el.classList.toggle("overdue", seconds < 0);
      el.classList.toggle("soon", seconds >= 0 && seconds < 900);
    });
  }

  function rows() {
    return Array.from(document.querySelectorAll("[data-row-link]"));
  }

  function move(step) {
    const links = rows();
    if (!links.length) return;
    const current = links.indexOf(document.activeElement);
    const next = current === -1 ? 0 : Math.min(links.length - 1, Math.max(0, current + step));
    links[next].focus();
    links[next].closest("tr").scrollIntoView({ block: "nearest" });
  }

  function typing(event) {
    const el = event.target;
    return el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
  }

  function toggleHelp() {
    const help = document.getElementById("help");
    if (!help) return;
    if (help.open) help.close(); else help.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    const key = event.key;
    if (key === "?") { toggleHelp(); event.preventDefault(); return; }
    if (key === "j") { move(1); event.preventDefault(); return; }
    if (key === "k") { move(-1); event.preventDefault(); return; }
    if (key === "a" || key === "r") {
      const button = document.querySelector('button[data-key="' + key + '"]');
      if (button) { button.focus(); button.scrollIntoView({ block: "center" }); event.preventDefault(); }
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-help-toggle]")) toggleHelp();
  });

  // An action swaps the decision card, so the button that had focus is gone and focus falls
  // back to <body>. Move it to the outcome instead, so keyboard and screen-reader users hear
  // what happened and carry on from there.
  function focusOutcome() {
    if (document.activeElement && document.activeElement !== document.body) return;
    const outcome = document.querySelector("#decision [data-outcome]");
    if (outcome) outcome.focus();
  }

  // A filter form sends only the filters in use, so the address htmx pushes is the short one
  // the tabs and pager use, not "?q=&owner=&policy=...".
  document.addEventListener("htmx:configRequest", function (event) {
    if (!event.detail.elt.matches("form[data-compact-query]")) return;
    const data = event.detail.formData;
    Array.from(new Set(data.keys())).forEach(function (key) {
      if (data.getAll(key).every(function (value) { return value === ""; })) data.delete(key);
    });
  });

  // A packet page hears "packet" from its event stream when the packet changes, with a tag of
  // what the decision card now shows: the card this reviewer's own action swapped in already
  // shows it (and its outcome notice), so only a card that differs is fetched again.
  document.addEventListener("htmx:confirm", function (event) {
    const cause = event.detail.triggeringEvent;
    if (!cause || cause.type !== "sse:packet" || !cause.detail) return;
    if (cause.detail.data === event.detail.elt.getAttribute("data-state")) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
  document.addEventListener("htmx:afterSettle", focusOutcome);
  setInterval(tick, 1000);
})();
