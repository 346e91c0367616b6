// Function-key bar: F1..F10 press the button of the same key in the bar (or in the page).
// A button's data-target is a CSS selector (an input gets focus, anything else is clicked)
// or a URL (starting with "/") to open.
(function () {
  "use strict";
  // New content is bound by htmx only when it settles (until then it carries htmx-added): a key
  // pressed before that is pressed once it has, so it takes the htmx path instead of following
  // a plain link or posting a form as a whole page.
  function press(el) {
    if (!window.htmx || !el.closest(".htmx-added")) {
      el.click();
      return;
    }
    var done = false;
    function go(event) {
      // another swap's settle: this content is not bound yet
      if (done || (event && el.closest(".htmx-added"))) return;
      done = true;
      document.removeEventListener("htmx:afterSettle", go);
      if (el.isConnected) el.click();
    }
    document.addEventListener("htmx:afterSettle", go);
    setTimeout(go, 1000); // a settle that never comes must not swallow the key
  }
  function act(button) {
    var target = button.getAttribute("data-target") || "";
    if (target.charAt(0) === "/") {
      window.location.assign(target);
      return;
    }
    if (target) {
      var el = document.querySelector(target);
      if (!el) return;
      if (el.matches("input, textarea, select")) {
        el.focus();
        if (el.select) el.select();
      } else {
        press(el);
      }
    }
  }
  document.addEventListener("keydown", function (event) {
    var m = /^F(\d{1,2})$/.exec(event.key);
    if (!m || event.altKey || event.ctrlKey || event.metaKey) return;
    var n = parseInt(m[1], 10);
    if (n < 1 || n > 10) return;
    // A key defined by the screen in front (a pop-up or dialog) wins over the page's bar.
    var buttons = document.querySelectorAll('[data-fkey="F' + n + '"]:not([disabled])');
    if (!buttons.length) return;
    event.preventDefault();
    var button = buttons[buttons.length - 1];
    if (button.hasAttribute("data-target")) act(button); else press(button);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-fkey][data-target]");
    if (button && event.isTrusted) act(button);
  });
})();
