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

  // After htmx swaps the table (filters), start again from the top.
  document.addEventListener("htmx:afterSwap", () => { current = -1; });
})();
