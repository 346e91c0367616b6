// Screen-pop helpers: Alt+Enter takes the newest ringing call; answered calls show a timer;
// × closes an ended pop.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest(".pop .pop-close");
    if (close) close.closest(".pop").remove();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.altKey) {
      var take = document.querySelector("#pop-area .pop-ringing .take");
      if (take) {
        event.preventDefault();
        take.click();
      }
    }
  });
  // The live connection closes with 4401 when the session ended (log-out elsewhere, retired,
  // password or role changed, expired): go to the log-in screen. Any other drop is retried
  // by htmx; ask the server once whether the session still lives, so a dead one does not
  // retry for ever.
  function toLogin() {
    window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }
  var probing = false;
  var leaving = false;  // this page is going (e.g. its own ログアウト): nothing to do
  window.addEventListener("beforeunload", function () { leaving = true; });
  document.addEventListener("htmx:wsClose", function (event) {
    if (leaving) return;
    var code = event.detail && event.detail.event ? event.detail.event.code : 0;
    if (code === 4401) { toLogin(); return; }
    if (probing) return;
    probing = true;
    fetch("/session", { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (r.status === 401) toLogin(); })
      .catch(function () { /* server away: htmx keeps retrying */ })
      .then(function () { probing = false; });
  });
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  setInterval(function () {
    document.querySelectorAll(".pop-answered[data-since] .pop-timer").forEach(function (el) {
      var since = Date.parse(el.closest(".pop").getAttribute("data-since"));
      var s = Math.max(0, Math.floor((Date.now() - since) / 1000));
      el.textContent = pad(Math.floor(s / 60)) + ":" + pad(s % 60);
    });
    document.querySelectorAll("#toasts .toast").forEach(function (el) {
      var born = Number(el.getAttribute("data-born") || 0);
      if (!born) el.setAttribute("data-born", String(Date.now()));
      else if (Date.now() - born > 6000) el.remove();
    });
  }, 1000);
})();
