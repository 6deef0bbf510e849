// Inbox keyboard: j/k move, Enter opens, c claims, x selects. Plain JS, no dependencies.
(function () {
  "use strict";
  let current = -1;

  function rows() {
    return Array.from(document.querySelectorAll("#inbox-table tr.inbox-row"));
  }

  function focusRow(index) {
    const all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((row, i) => row.classList.toggle("is-current", i === current));
    all[current].scrollIntoView({ block: "nearest" });
    all[current].querySelector("a").focus({ preventScroll: true });
  }

  function csrfToken() {
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function claim(row) {
    const url = row.dataset.claim;
    if (!url) return;
    const form = document.createElement("form");
    form.method = "post";
    form.action = url;
    const token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrfToken();
    form.appendChild(token);
    document.body.appendChild(form);
    form.submit();
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.matches("input:not([type=checkbox]), textarea, select")) return;
    const all = rows();
    if (event.key === "j") { focusRow(current + 1); event.preventDefault(); }
    else if (event.key === "k") { focusRow(current - 1); event.preventDefault(); }
    else if (event.key === "Enter" && current >= 0 && all[current]) {
      window.location.href = all[current].dataset.href;
      event.preventDefault();
    } else if (event.key === "c" && current >= 0 && all[current]) {
      claim(all[current]);
      event.preventDefault();
    } else if (event.key === "x" && current >= 0 && all[current]) {
      const box = all[current].querySelector("input[type=checkbox]");
      if (box) box.checked = !box.checked;
      event.preventDefault();
    }
  });

  document.addEventListener("change", (event) => {
    if (event.target.id === "select-all") {
      rows().forEach((row) => {
        const box = row.querySelector("input[type=checkbox]");
        if (box) box.checked = event.target.checked;
      });
    }
  });

  // After a swap stay on the same row where it is still there: the tab bar loading its counts
  // or a live refresh keeps it; new rows from the filters have none, so start from the top.
  function recover() {
    current = rows().findIndex((row) => row.classList.contains("is-current"));
  }
  document.addEventListener("htmx:afterSwap", recover);
  document.addEventListener("signoff:inbox-refreshed", recover);
})();

// Live: any change that concerns me (events and notifications from static/js/live.js) refreshes
// the table in place, keeping the filters, the selected rows and the current row.
(function () {
  "use strict";
  let timer = null;

  async function refresh() {
    const table = document.getElementById("inbox-table");
    if (!table) return;
    const checked = new Set(
      Array.from(table.querySelectorAll("input[name=tasks]:checked"), (box) => box.value)
    );
    const current = table.querySelector("tr.is-current");
    const response = await fetch(window.location.href, { headers: { "HX-Request": "true" } });
    if (!response.ok) return;
    const fresh = new DOMParser()
      .parseFromString(await response.text(), "text/html")
      .getElementById("inbox-table");
    if (!fresh) return;
    fresh.querySelectorAll("input[name=tasks]").forEach((box) => {
      box.checked = checked.has(box.value);
    });
    if (current) {
      const row = fresh.querySelector(`tr[data-task="${current.dataset.task}"]`);
      if (row) row.classList.add("is-current");
    }
    table.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh); // its tab bar loads its counts
    document.dispatchEvent(new CustomEvent("signoff:inbox-refreshed"));
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }

  document.addEventListener("signoff:event", soon);
  document.addEventListener("signoff:notification", soon);
})();
