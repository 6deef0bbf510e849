// The replay slider (templates/approvals/replay.html): moving it shows the chosen point at once;
// without script the Show button does the same.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("replay-form");
  const slider = document.getElementById("replay-seq");
  const text = document.getElementById("replay-seq-text");
  if (!form || !slider) return;
  slider.addEventListener("input", () => {
    if (text) text.textContent = `${slider.value} / ${slider.max}`;
  });
  slider.addEventListener("change", () => form.submit());
});
