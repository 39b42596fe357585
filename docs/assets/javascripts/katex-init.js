// Render the math that pymdownx.arithmatex wrapped in .arithmatex elements with KaTeX
// (served from this site: assets/vendor/katex/, fetched from npm at build time).
// Only those elements are touched, so a "$" anywhere else on a page stays a dollar sign.
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
});
