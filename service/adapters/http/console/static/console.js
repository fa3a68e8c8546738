// The console's one script: live countdowns to each deadline on the page, once a second.
"use strict";
(function () {
  function span(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    if (days) return days + "d " + hours + "h";
    if (hours) return hours + "h " + (mins < 10 ? "0" : "") + mins + "m";
    return mins + "m";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = Date.parse(el.getAttribute("data-deadline")) - now;
      el.textContent = left >= 0 ? span(left) + " left" : "overdue by " + span(left);
      el.classList.toggle("overdue", left < 0);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
  });
})();
