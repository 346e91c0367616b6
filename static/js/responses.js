// 対応履歴 / AC履歴 tabs: forms answer bad input with 400 and the form to show again;
// 挿入 puts an FAQ's model answer into 対応; Enter in the FAQ search box searches.
(function () {
  "use strict";
  if (window.__yebisuResponses) return;
  window.__yebisuResponses = true;

  document.addEventListener("htmx:beforeSwap", function (event) {
    var d = event.detail;
    var elt = (d.requestConfig && d.requestConfig.elt) || d.elt || event.target;
    if (d.xhr && d.xhr.status === 400 && elt && elt.closest && elt.closest("[data-swap-errors]")) {
      d.shouldSwap = true;
      d.isError = false;
    }
  });

  function insertAnswer(button) {
    var answer = document.getElementById("response-answer");
    if (!answer) return;
    var text = button.getAttribute("data-answer") || "";
    var current = answer.value.replace(/\s+$/, "");
    answer.value = current ? current + "\n" + text : text;
    answer.focus();
    answer.setSelectionRange(answer.value.length, answer.value.length);
    answer.dispatchEvent(new Event("input", { bubbles: true }));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".faq-insert");
    if (!button) return;
    event.preventDefault();
    insertAnswer(button);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target && event.target.id === "faq-q") {
      event.preventDefault(); // not the response form's submit
      if (window.htmx) window.htmx.trigger(event.target, "search");
    }
  });
})();
