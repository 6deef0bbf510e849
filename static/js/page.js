// Small behaviours that pages ask for with data- attributes, since the Content-Security-Policy
// runs no inline handler (onfocus=, onsubmit=):
//   <input data-select-on-focus>        selects its text when focused (a token to copy)
//   <form data-confirm="Withdraw it?">  asks before it is sent
(function () {
  "use strict";
  document.addEventListener("focusin", (event) => {
    if (event.target.matches("input[data-select-on-focus]")) event.target.select();
  });
  document.addEventListener("submit", (event) => {
    const question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
