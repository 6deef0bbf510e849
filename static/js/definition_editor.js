// The definition editor (admin): says, as the admin types a guard, whether the engine can read
// it. <input class="guard-input" data-check-url="..."> is followed by <output class="guard-check">.
// Listens on the document, so the rows the admin adds with "Add another" work too.
(function () {
  "use strict";
  const timers = new WeakMap();

  async function check(input) {
    const output = input.parentElement.querySelector("output.guard-check");
    if (!output) return;
    const url = input.dataset.checkUrl + "?guard=" + encodeURIComponent(input.value);
    const response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok) {
      output.textContent = "The guard could not be checked (" + response.status + ").";
      output.className = "guard-check guard-unknown";
      return;
    }
    const { ok, message } = await response.json();
    output.textContent = message;
    output.className = "guard-check " + (ok ? "guard-ok" : "guard-bad");
    input.setAttribute("aria-invalid", ok ? "false" : "true");
  }

  document.addEventListener("input", (event) => {
    const input = event.target.closest && event.target.closest("input.guard-input[data-check-url]");
    if (!input) return;
    clearTimeout(timers.get(input));
    timers.set(input, setTimeout(() => check(input), 250));
  });
})();
