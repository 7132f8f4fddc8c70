extension DashboardAssets {
    /// Live pages: the part marked `data-live` is fetched again every few seconds and swapped in, unless the
    /// pause switch is on (remembered per browser) or the user is in the middle of selecting or typing. Also
    /// "select all" boxes and confirmations before destructive actions.
    static let pageScript = #"""
    (function () {
      "use strict";
      var pauseKey = "gantry.refresh.paused";
      function paused() { return localStorage.getItem(pauseKey) === "1"; }
      function busy(live) {
        if (live.querySelector("input[type=checkbox].select-job:checked")) return true;
        var active = document.activeElement;
        return !!(active && live.contains(active) && /INPUT|SELECT|TEXTAREA/.test(active.tagName));
      }
      function wire(root) {
        root.querySelectorAll("input.select-all").forEach(function (box) {
          box.addEventListener("change", function () {
            var form = box.closest("form") || document;
            form.querySelectorAll("input.select-job").forEach(function (job) { job.checked = box.checked; });
          });
        });
        root.querySelectorAll("[data-confirm]").forEach(function (el) {
          el.addEventListener("click", function (event) {
            if (!window.confirm(el.getAttribute("data-confirm"))) event.preventDefault();
          });
        });
      }
      function refresh() {
        var live = document.querySelector("[data-live]");
        if (!live || paused() || busy(live) || document.hidden) return;
        fetch(window.location.href, { credentials: "same-origin", headers: { "X-Gantry-Refresh": "1" } })
          .then(function (response) { return response.ok ? response.text() : null; })
          .then(function (html) {
            if (!html) return;
            var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
            if (fresh && !busy(live)) { live.innerHTML = fresh.innerHTML; wire(live); }
          })
          .catch(function () {});
      }
      document.addEventListener("DOMContentLoaded", function () {
        wire(document);
        var toggle = document.getElementById("refresh-pause");
        if (toggle) {
          toggle.checked = paused();
          toggle.addEventListener("change", function () { localStorage.setItem(pauseKey, toggle.checked ? "1" : "0"); });
        }
        var live = document.querySelector("[data-live]");
        if (live) setInterval(refresh, (parseInt(live.getAttribute("data-live"), 10) || 5) * 1000);
      });
    })();
    """#
}
