// Page behaviours declared in the templates by data attributes and classes: the pages carry no
// inline script or handler (the Content-Security-Policy allows scripts from /static only), and
// htmx runs with allowEval off, so no hx-on or [filter] expression either.
(function () {
  "use strict";
  if (window.__yebisuUi) return;
  window.__yebisuUi = true;

  // An error answered to an htmx request (errors/_fragment.html): shown as a toast. 400, 409
  // and 422 are swapped there by htmx itself (HX-Retarget); the others are not swapped at all.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail && event.detail.xhr;
    var toasts = document.getElementById("toasts");
    if (!xhr || !toasts || !/text\/html/.test(xhr.getResponseHeader("Content-Type") || "")) return;
    var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
    var toast = doc.querySelector(".toast.error");
    if (toast) toasts.appendChild(document.importNode(toast, true));
  });

  // 削除 of a phone or e-mail row: the row goes, the focus moves to the list's 追加.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".row-remove");
    if (!button) return;
    var li = button.closest("li");
    var box = li && li.closest("fieldset");
    if (!li) return;
    li.remove();
    var add = box && box.querySelector(".row-add");
    if (add) add.focus();
  });

  // A form that asks before it is sent (data-confirm="…").
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // A form that searches again when one of its selects changes (hx-trigger="…, select-change").
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!target.matches || !target.matches("select")) return;
    var form = target.closest("form[data-select-change]");
    if (form && window.htmx) window.htmx.trigger(form, "select-change");
  });

  // 郵便番号 (data-postcode): Enter looks it up (and does not send the form); leaving a changed
  // postcode looks it up too, but not again the one Enter just looked up.
  function lookUp(input) {
    input.dataset.looked = input.value;
    if (window.htmx) window.htmx.trigger(input, "postcode-lookup");
  }
  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key !== "Enter" || !input.matches || !input.matches("input[data-postcode]")) return;
    event.preventDefault();
    lookUp(input);
  });
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[data-postcode]")) return;
    if (input.value !== input.dataset.looked) lookUp(input);
  });

  // A field focused with data-caret-end gets the caret after what it holds (番地 after the
  // look-up filled it in).
  function caretToEnd(el) {
    if (el && el.matches && el.matches("input[data-caret-end]") && el.setSelectionRange) {
      el.setSelectionRange(el.value.length, el.value.length);
    }
  }
  document.addEventListener("focusin", function (event) { caretToEnd(event.target); });
  document.addEventListener("DOMContentLoaded", function () { caretToEnd(document.activeElement); });
})();
