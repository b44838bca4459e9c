/* Governance screens: confirmation of irreversible steps and the JSON editor's formatter.
   No inline code: everything hangs off data attributes and classes. */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.gov-format");
    if (!button) return;
    var area = document.getElementById(button.getAttribute("data-target"));
    var status = button.parentElement.querySelector(".gov-format-status");
    if (!area) return;
    try {
      area.value = JSON.stringify(JSON.parse(area.value), null, 2);
      if (status) status.textContent = "Formatted.";
    } catch (err) {
      if (status) status.textContent = "Not valid JSON: " + err.message;
    }
  });
})();
