// Live board: running durations tick in the browser (the server pushes only changes).
(function () {
  if (window.yebisuBoardTicks) return;
  window.yebisuBoardTicks = true;
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".tick[data-since]").forEach(function (el) {
      var since = Date.parse(el.getAttribute("data-since"));
      if (isNaN(since)) return;
      var s = Math.max(0, Math.floor((now - since) / 1000));
      var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
      el.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(sec);
    });
  }
  tick();
  setInterval(tick, 1000);
  document.addEventListener("htmx:oobAfterSwap", tick);
  document.addEventListener("htmx:wsAfterMessage", tick);
})();
