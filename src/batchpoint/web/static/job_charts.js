// The job page's timeline: show the details of the bar under the pointer or with the keyboard focus below the
// chart (each bar's title, its accessible name, shows them on hover without JavaScript too).
(function () {
  function show(event) {
    var bar = event.target.closest ? event.target.closest(".bar") : null;
    var detail = document.getElementById("bar-detail");
    if (bar && detail) {
      detail.textContent = bar.querySelector("title").textContent;
    }
  }
  document.addEventListener("focusin", show);
  document.addEventListener("mouseover", show);
})();
