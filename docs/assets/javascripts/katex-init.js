// Render the math that pymdownx.arithmatex wrapped in .arithmatex elements with KaTeX
// (served from this site: assets/vendor/katex/, fetched from npm at build time).
// Only those elements are touched, so a "$" anywhere else on a page stays a dollar sign.
//
// A display equation wider than the column is scaled down to fit (KaTeX sizes everything
// in em, so a smaller font-size shrinks the whole formula), but never below MIN_SCALE:
// past that it would be unreadable, so on a narrow phone screen it scrolls sideways in
// its own box (extra.css) instead of being cut off or widening the page.
var MIN_SCALE = 0.6;

function fitDisplayEquations(root) {
  root.querySelectorAll(".katex-display").forEach(function (display) {
    var formula = display.querySelector(".katex");
    if (!formula) return;
    display.style.fontSize = "";
    var available = display.clientWidth;
    var needed = formula.scrollWidth;
    if (available > 0 && needed > available) {
      var scale = Math.max(MIN_SCALE, (available - 2) / needed);
      display.style.fontSize = scale.toFixed(3) + "em";
    }
  });
}

document$.subscribe(function () {
  document.querySelectorAll(".arithmatex").forEach(function (element) {
    renderMathInElement(element, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true }
      ],
      throwOnError: false
    });
  });
  fitDisplayEquations(document);
  document.body.setAttribute("data-math-fitted", "1");
});

var refitTimer = null;
window.addEventListener("resize", function () {
  clearTimeout(refitTimer);
  refitTimer = setTimeout(function () { fitDisplayEquations(document); }, 100);
});
