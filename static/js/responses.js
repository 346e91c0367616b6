// 対応履歴 / AC履歴 tabs: 挿入 puts an FAQ's model answer into 対応; Enter in the FAQ
// search box searches. (A 400 carrying the form and its messages is swapped in by the
// page-wide htmx-config in base.html.)
(function () {
  "use strict";
  if (window.__yebisuResponses) return;
  window.__yebisuResponses = true;

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
