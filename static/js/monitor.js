// Customer monitor: Alt+1..7 switch tabs (F2..F8 do too, through the F-key bar).
(function () {
  "use strict";
  if (window.__yebisuMonitor) return;
  window.__yebisuMonitor = true;
  document.addEventListener("keydown", function (event) {
    if (!event.altKey || event.ctrlKey || event.metaKey) return;
    if (!/^[1-7]$/.test(event.key)) return;
    var tab = document.querySelector('#monitor-tabs [data-alt-key="' + event.key + '"]');
    if (!tab) return;
    event.preventDefault();
    tab.click();
  });
})();
