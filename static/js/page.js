// Small behaviours that pages ask for with data- attributes, since the Content-Security-Policy
// runs no inline handler (onfocus=, onsubmit=, onclick=):
//   <input data-select-on-focus>        selects its text when focused (a token to copy)
//   <form data-confirm="Withdraw it?">  asks before it is sent
//   <button data-folds="ID">            opens and closes the element with that id (.is-open);
//                                       the stylesheet folds a closed .foldable on phones only,
//                                       and only once this script runs (the has-js class), so
//                                       without it everything stays unfolded
// Loaded in <head> without defer, so that has-js is set before the first paint.
(function () {
  "use strict";
  document.documentElement.classList.add("has-js");

  function setOpen(button, target, open) {
    target.classList.toggle("is-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-folds]").forEach((button) => {
      const target = document.getElementById(button.dataset.folds);
      if (target) setOpen(button, target, target.classList.contains("is-open"));
    });
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-folds]");
    const target = button && document.getElementById(button.dataset.folds);
    if (target) setOpen(button, target, !target.classList.contains("is-open"));
  });
  document.addEventListener("focusin", (event) => {
    if (event.target.matches("input[data-select-on-focus]")) event.target.select();
  });
  document.addEventListener("submit", (event) => {
    const question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
