// Suggests people by name as you type in any person box (accounts.forms.PersonInput):
// <input data-people-search="/people/" list="...">; choosing one puts in their username.
// Listens on the document, so boxes that a live refresh puts in place (task.js) work too.
(function () {
  "use strict";
  let timer = null;
  document.addEventListener("input", (event) => {
    const input = event.target.closest && event.target.closest("input[data-people-search]");
    if (!input) return;
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const list = document.getElementById(input.getAttribute("list"));
      if (!list) return;
      const url = input.dataset.peopleSearch + "?q=" + encodeURIComponent(input.value);
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const { results } = await response.json();
      list.replaceChildren(...results.map((person) => {
        const option = document.createElement("option");
        option.value = person.username;
        option.label = person.name;
        return option;
      }));
    }, 150);
  });
})();
