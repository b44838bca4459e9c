/* Coordination pages: show each what-if slider's value next to it as it moves (no inline
   code: the CSP forbids it). */
(function () {
  "use strict";
  function show(input) {
    const out = document.querySelector('output[data-slider-output="' + input.id + '"]');
    if (!out) return;
    const v = Number(input.value);
    const unit = input.dataset.unit || "";
    out.textContent = (v > 0 ? "+" : "") + v + (unit === "%" ? "%" : " " + unit);
  }
  function init(root) {
    root.querySelectorAll('input[type="range"][data-unit]').forEach(function (input) {
      show(input);
      input.addEventListener("input", function () { show(input); });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (e) { init(e.target); });
})();
