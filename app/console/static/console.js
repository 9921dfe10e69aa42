// The little the pages need: comparing faces (zoom, overlay, flicker, another enrolled
// photo), going back, printing. Loaded from the application itself; no inline script.
"use strict";

function toggle(button, compare, name) {
  const on = compare.classList.toggle(name);
  button.setAttribute("aria-pressed", String(on));
  return on;
}

document.addEventListener("DOMContentLoaded", () => {
  for (const candidate of document.querySelectorAll(".candidate")) {
    const compare = candidate.querySelector("[data-compare]");
    let flicker = null;
    candidate.querySelector("[data-zoom]").addEventListener("click", (event) =>
      toggle(event.currentTarget, compare, "zoomed"));
    candidate.querySelector("[data-overlay]").addEventListener("click", (event) =>
      toggle(event.currentTarget, compare, "overlaid"));
    candidate.querySelector("[data-flicker]").addEventListener("click", (event) => {
      if (flicker !== null) {
        clearInterval(flicker);
        flicker = null;
        compare.classList.remove("flicker-on", "flicker-off");
        event.currentTarget.setAttribute("aria-pressed", "false");
        return;
      }
      compare.classList.add("overlaid", "flicker-on");
      event.currentTarget.setAttribute("aria-pressed", "true");
      flicker = setInterval(() => {
        compare.classList.toggle("flicker-on");
        compare.classList.toggle("flicker-off");
      }, 500);
    });
    for (const button of candidate.querySelectorAll("[data-photo]")) {
      button.addEventListener("click", () => {
        candidate.querySelector("[data-enrolled]").src = button.dataset.photo;
        candidate.querySelector("[data-photo-number]").textContent = button.dataset.number;
      });
    }
  }
  for (const button of document.querySelectorAll("[data-back]")) {
    button.addEventListener("click", () => history.back());
  }
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
});
