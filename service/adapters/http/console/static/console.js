// The console's one script: live countdowns (once a second) and the queue's refresh without a reload.
"use strict";
(function () {
  var REFRESH_MS = 15000;

  function span(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    if (days) return days + "d " + hours + "h";
    if (hours) return hours + "h " + (mins < 10 ? "0" : "") + mins + "m";
    return mins + "m";
  }

  // A row whose next deadline has passed is breached now, whatever the server said when it drew it.
  function breach(row) {
    row.className = "state-breached";
    var badge = row.querySelector(".badge.state");
    if (badge) {
      badge.className = "badge state breached";
      badge.textContent = "breached";
    }
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = Date.parse(el.getAttribute("data-deadline")) - now;
      el.textContent = left >= 0 ? span(left) + " left" : "overdue by " + span(left);
      el.classList.toggle("overdue", left < 0);
    });
    document.querySelectorAll("tr[data-deadline]:not(.state-breached)").forEach(function (row) {
      if (Date.parse(row.getAttribute("data-deadline")) <= now) breach(row);
    });
  }

  // Fetch the queue's results as the server renders them and put them in place of the old ones.
  function refresh() {
    var region = document.getElementById("queue-results");
    if (!region || document.hidden) return;
    fetch(region.getAttribute("data-refresh"), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.redirected) {
          window.location.assign(response.url); // the session ended: the sign-in page
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("queue-results");
        if (fresh) {
          region.replaceWith(fresh);
          tick();
        }
      })
      .catch(function () {}); // the service is away for a moment: the next refresh tries again
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    if (document.getElementById("queue-results")) {
      setInterval(refresh, REFRESH_MS);
      window.addEventListener("focus", refresh);
      document.addEventListener("visibilitychange", refresh);
    }
  });
})();
