// Suggests people as you type in a delegate box: <input data-people-search="/people/" list="...">.
(function () {
  "use strict";
  document.querySelectorAll("input[data-people-search]").forEach((input) => {
    const list = document.getElementById(input.getAttribute("list"));
    let timer = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
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
  });
})();
