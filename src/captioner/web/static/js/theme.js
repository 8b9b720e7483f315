// Light/dark theme. Loaded in <head> without defer, so the theme is set before the first paint.
// The choice persists in localStorage; without one the page follows the system (prefers-color-scheme).
(function () {
  "use strict";
  var KEY = "captioner-theme";
  document.documentElement.classList.add("js"); // scripts run: show the controls that need them
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "light" || value === "dark" ? value : null;
    } catch (error) {
      return null; // storage blocked: follow the system
    }
  }

  function current() {
    return stored() || (media && media.matches ? "dark" : "light");
  }

  function apply(theme) {
    document.documentElement.setAttribute("data-theme", theme);
    var button = document.getElementById("theme-toggle");
    if (button) {
      button.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
    }
  }

  apply(current());

  if (media && media.addEventListener) {
    media.addEventListener("change", function () {
      if (!stored()) apply(current());
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    apply(current());
    button.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      try {
        window.localStorage.setItem(KEY, next);
      } catch (error) {
        // storage blocked: the change lasts for this page only
      }
      apply(next);
    });
  });
})();
