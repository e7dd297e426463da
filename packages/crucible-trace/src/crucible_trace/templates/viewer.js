(function () {
  "use strict";
  // Everything from the chain goes through textContent or attributes set by property, never
  // through innerHTML, so no text in an event can become markup or script.
  var data = JSON.parse(document.getElementById("trace-data").textContent);
  var events = data.events;
  var list = document.getElementById("events");
  var search = document.getElementById("search");
  var typeFilter = document.getElementById("type-filter");
  var minConfidence = document.getElementById("min-confidence");
  var minConfidenceValue = document.getElementById("min-confidence-value");
  var shownCount = document.getElementById("shown-count");
  var chart = document.getElementById("chart");
  var SVG = "http://www.w3.org/2000/svg";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  var counts = {};
  events.forEach(function (e) { counts[e.type] = (counts[e.type] || 0) + 1; });
  Object.keys(counts).sort().forEach(function (type) {
    var option = el("option", null, type + " (" + counts[type] + ")");
    option.value = type;
    typeFilter.appendChild(option);
  });

  var haystacks = [];
  var cards = events.map(function (e, i) {
    var card = el("li", "event");
    card.id = e.id;
    if (e.confidence !== null && e.confidence < 0.5) card.classList.add("low");
    var head = el("div", "head");
    head.appendChild(el("span", null, "#" + (i + 1)));
    head.appendChild(el("span", "type", e.type));
    var bar = el("span", "bar");
    var fill = el("span");
    fill.style.width = e.confidence === null ? "0" : Math.round(e.confidence * 100) + "%";
    bar.appendChild(fill);
    head.appendChild(bar);
    head.appendChild(el("span", "confidence",
      e.confidence === null ? "confidence unknown" : "confidence " + e.confidence.toFixed(2)));
    head.appendChild(el("time", null, e.timestamp));
    card.appendChild(head);
    card.appendChild(el("div", "decision", e.decision));
    if (e.reasoning) card.appendChild(el("p", "reasoning", e.reasoning));
    if (e.alternatives.length) {
      var alternatives = el("ul", "alternatives");
      e.alternatives.forEach(function (a) { alternatives.appendChild(el("li", null, "instead: " + a)); });
      card.appendChild(alternatives);
    }
    var meta = [];
    if (e.code_section !== null) meta.push("code: " + e.code_section);
    if (e.spec_reference !== null) meta.push("spec: " + e.spec_reference);
    if (e.parent_ids.length) meta.push("follows from: " + e.parent_ids.join(", "));
    if (meta.length) card.appendChild(el("div", "meta", meta.join(" · ")));
    haystacks.push([e.type, e.decision, e.reasoning, e.alternatives.join("\n"),
      e.code_section || "", e.spec_reference || ""].join("\n").toLowerCase());
    return card;
  });
  var fragment = document.createDocumentFragment();
  cards.forEach(function (card) { fragment.appendChild(card); });
  list.appendChild(fragment);

  function drawChart(visible) {
    while (chart.firstChild) chart.removeChild(chart.firstChild);
    var n = events.length;
    if (!n) return;
    var x = function (i) { return n === 1 ? 150 : 6 + (i * 288) / (n - 1); };
    var y = function (c) { return 134 - c * 128; };
    var points = [];
    events.forEach(function (e, i) { if (e.confidence !== null) points.push(x(i) + "," + y(e.confidence)); });
    var line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#98a2b3");
    line.setAttribute("stroke-width", "1");
    chart.appendChild(line);
    if (n > 2000) return; // markers for every event would only blur a long chain
    events.forEach(function (e, i) {
      if (e.confidence === null || !visible[i]) return;
      var dot = document.createElementNS(SVG, "circle");
      dot.setAttribute("cx", x(i));
      dot.setAttribute("cy", y(e.confidence));
      dot.setAttribute("r", "3");
      dot.setAttribute("fill", e.confidence < 0.5 ? "#c0392b" : "#3b5bdb");
      var title = document.createElementNS(SVG, "title");
      title.textContent = "#" + (i + 1) + " " + e.decision;
      dot.appendChild(title);
      chart.appendChild(dot);
    });
  }

  function apply() {
    var query = search.value.trim().toLowerCase();
    var type = typeFilter.value;
    var least = parseFloat(minConfidence.value) || 0;
    var shown = 0;
    var visible = events.map(function (e, i) {
      var ok = (!query || haystacks[i].indexOf(query) !== -1) &&
        (!type || e.type === type) &&
        (least <= 0 || (e.confidence !== null && e.confidence >= least));
      cards[i].hidden = !ok;
      if (ok) shown += 1;
      return ok;
    });
    shownCount.textContent = shown + " of " + events.length + " events";
    minConfidenceValue.textContent = least.toFixed(2);
    drawChart(visible);
  }

  search.addEventListener("input", apply);
  typeFilter.addEventListener("change", apply);
  minConfidence.addEventListener("input", apply);
  apply();
  document.body.setAttribute("data-ready", "true");
})();
