// The contact sheet's filters: show only the shots that have a failed, in-flight or picked take.
// On a big sheet (videos marked data-lazy, preload="none"), a video starts loading its metadata
// only once it comes near the viewport. The review app replaces shots as they change and then
// sends "sheet:changed" on the document: the current filter and the lazy loading cover them too.
(function () {
  "use strict";
  var buttons = Array.prototype.slice.call(document.querySelectorAll("nav.filters [data-filter]"));
  var empty = document.getElementById("no-match");

  function apply(filter) {
    var shown = 0;
    document.querySelectorAll("section.shot").forEach(function (shot) {
      var match = filter === "all" || shot.getAttribute("data-" + filter) === "1";
      shot.hidden = !match;
      if (match) {
        shown += 1;
      }
    });
    buttons.forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-filter") === filter));
    });
    if (empty) {
      empty.hidden = shown > 0;
    }
    document.body.setAttribute("data-filter", filter);
  }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      var filter = button.getAttribute("data-filter");
      var current = document.body.getAttribute("data-filter");
      // A second click on an active filter goes back to showing everything.
      apply(filter === current ? "all" : filter);
    });
  });
  apply("all");

  var observer = null;
  if ("IntersectionObserver" in window) {
    observer = new IntersectionObserver(
      function (entries) {
        entries.forEach(function (entry) {
          if (entry.isIntersecting) {
            observer.unobserve(entry.target);
            entry.target.removeAttribute("data-lazy");
            entry.target.preload = "metadata";
          }
        });
      },
      { rootMargin: "600px 0px" }
    );
  }

  function watchLazy() {
    if (observer) {
      document.querySelectorAll("video[data-lazy]").forEach(function (video) {
        observer.observe(video);
      });
    }
  }
  watchLazy();

  document.addEventListener("sheet:changed", function () {
    apply(document.body.getAttribute("data-filter") || "all");
    watchLazy();
  });
})();
