// The attention explorer (docs/walkthroughs/attention-with-numbers.md): choose a sentence, a head and a word,
// and see that word's row of attention weights, each earlier token shaded by the weight it gets.
// The weights are computed from the shipped model at build time (tools/docs/walkthroughs.py,
// attention_explorer) and stored in the page as JSON: nothing is fetched, so it works offline and from file://.
function tspecAttentionExplorer(root) {
  var data = JSON.parse(root.getAttribute("data-attention"));
  root.innerHTML = "";
  var controls = document.createElement("p");
  var sentenceSelect = document.createElement("select");
  var headSelect = document.createElement("select");
  sentenceSelect.setAttribute("aria-label", "sentence");
  headSelect.setAttribute("aria-label", "head");
  data.sentences.forEach(function (s, i) { sentenceSelect.add(new Option(s.text, i)); });
  data.sentences[0].heads.forEach(function (h, i) { headSelect.add(new Option("head " + h, i)); });
  controls.append("Sentence ", sentenceSelect, " ", headSelect);
  var tokens = document.createElement("p");
  var row = document.createElement("div");
  row.className = "tspec-row";
  root.append(controls, tokens, row);
  var chosen = null;

  function show() {
    var s = data.sentences[sentenceSelect.value];
    var head = Number(headSelect.value);
    if (chosen === null || chosen >= s.tokens.length) chosen = s.tokens.length - 1;
    tokens.innerHTML = "";
    s.tokens.forEach(function (t, q) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "tspec-token";
      b.textContent = t;
      b.setAttribute("aria-pressed", q === chosen ? "true" : "false");
      b.addEventListener("click", function () { chosen = q; show(); });
      tokens.append(b);
    });
    var weights = s.weights[head][chosen];
    row.innerHTML = "";
    var caption = document.createElement("p");
    caption.textContent = "Head " + s.heads[head] + ": where \u201c" + s.tokens[chosen].trim() + "\u201d looks (weights sum to 1):";
    row.append(caption);
    weights.forEach(function (w, k) {
      var cell = document.createElement("span");
      cell.className = "tspec-token";
      cell.setAttribute("data-weight", w.toFixed(3));
      cell.style.background = "rgba(63, 81, 181, " + w.toFixed(3) + ")";
      cell.style.color = w > 0.5 ? "white" : "inherit";
      cell.textContent = s.tokens[k] + " " + w.toFixed(2);
      row.append(cell);
    });
  }
  sentenceSelect.addEventListener("change", show);
  headSelect.addEventListener("change", show);
  show();
  root.setAttribute("data-ready", "1");
}

document$.subscribe(function () {
  document.querySelectorAll(".tspec-attention-explorer[data-attention]").forEach(tspecAttentionExplorer);
});
