// Folding parts of a page on small screens: the main menu and the inbox's filters.
// A button with data-folds="ID" opens and closes the element with that id (class .is-open);
// the stylesheet hides a closed .foldable on phones only, and only when this script runs
// (the `has-js` class), so without it everything stays unfolded.
(function () {
  "use strict";
  document.documentElement.classList.add("has-js");

  function setOpen(button, target, open) {
    target.classList.toggle("is-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-folds]").forEach(function (button) {
      const target = document.getElementById(button.dataset.folds);
      if (!target) return;
      setOpen(button, target, target.classList.contains("is-open"));
      button.addEventListener("click", function () {
        setOpen(button, target, !target.classList.contains("is-open"));
      });
    });
  });
})();
