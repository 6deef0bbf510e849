// The definition editor (admin).
// - Says, as the admin types a guard, whether the engine can read it:
//   <input class="guard-input" data-check-url="..."> is followed by <output class="guard-check">.
// - Offers the steps typed in the step rows, before they are saved, in the arrows' "From" and
//   "Goes to" lists.
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

  function offerSteps() {
    const paths = Array.from(
      document.querySelectorAll("#states-group input[name^='states-'][name$='-path']")
    ).filter((input) => !input.closest(".empty-form")).map((input) => input.value.trim())
      .filter(Boolean);
    const lists = {
      source: paths,
      target: paths.map((path) => path.split(".").pop()),
    };
    for (const [column, names] of Object.entries(lists)) {
      const selects = document.querySelectorAll(
        `#transitions-group select[name^='transitions-'][name$='-${column}']`
      );
      for (const select of selects) {
        const known = new Set(Array.from(select.options, (option) => option.value));
        for (const name of new Set(names)) {
          if (!known.has(name)) select.add(new Option(name, name));
        }
      }
    }
  }

  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches("#states-group input[name$='-path']")) {
      offerSteps();
    }
  });
  document.addEventListener("formset:added", offerSteps);
})();
