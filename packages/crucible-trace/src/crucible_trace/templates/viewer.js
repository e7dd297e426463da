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

  // The chart's frame: confidence (0 to 1) up the left, event number along the bottom.
  var W = 320, H = 170, LEFT = 40, RIGHT = 10, TOP = 10, BOTTOM = 34;

  function svg(tag, attributes, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attributes).forEach(function (k) { node.setAttribute(k, attributes[k]); });
    if (text !== undefined) node.textContent = String(text);
    chart.appendChild(node);
    return node;
  }

  function drawAxes(n) {
    var bottom = H - BOTTOM, right = W - RIGHT;
    svg("line", {x1: LEFT, y1: TOP, x2: LEFT, y2: bottom, stroke: "#667085", "class": "axis"});
    svg("line", {x1: LEFT, y1: bottom, x2: right, y2: bottom, stroke: "#667085", "class": "axis"});
    [0, 0.5, 1].forEach(function (c) {
      var yy = y(c);
      svg("line", {x1: LEFT - 4, y1: yy, x2: LEFT, y2: yy, stroke: "#667085"});
      if (c > 0) svg("line", {x1: LEFT, y1: yy, x2: right, y2: yy, stroke: "#e4e7ec"});
      svg("text", {x: LEFT - 6, y: yy + 3, "text-anchor": "end", "font-size": "9",
        fill: "#667085", "class": "tick"}, c.toFixed(1));
    });
    var ticks = n === 1 ? [0] : [0, n - 1];
    ticks.forEach(function (i) {
      svg("line", {x1: x(i), y1: bottom, x2: x(i), y2: bottom + 4, stroke: "#667085"});
      svg("text", {x: x(i), y: bottom + 13, "text-anchor": "middle", "font-size": "9",
        fill: "#667085", "class": "tick"}, i + 1);
    });
    svg("text", {x: (LEFT + right) / 2, y: H - 4, "text-anchor": "middle", "font-size": "10",
      fill: "#1d2330", "class": "axis-label"}, "event (in order)");
    svg("text", {x: 10, y: (TOP + bottom) / 2, "text-anchor": "middle", "font-size": "10",
      fill: "#1d2330", "class": "axis-label",
      transform: "rotate(-90 10 " + (TOP + bottom) / 2 + ")"}, "confidence");
  }

  function x(i) {
    var n = events.length;
    return n === 1 ? (LEFT + W - RIGHT) / 2 : LEFT + (i * (W - RIGHT - LEFT)) / (n - 1);
  }
  function y(c) { return H - BOTTOM - c * (H - BOTTOM - TOP); }

  function drawChart(visible) {
    while (chart.firstChild) chart.removeChild(chart.firstChild);
    var n = events.length;
    if (!n) return;
    drawAxes(n);
    var points = [];
    events.forEach(function (e, i) { if (e.confidence !== null) points.push(x(i) + "," + y(e.confidence)); });
    svg("polyline", {points: points.join(" "), fill: "none", stroke: "#98a2b3", "stroke-width": "1"});
    if (n > 2000) return; // markers for every event would only blur a long chain
    events.forEach(function (e, i) {
      if (e.confidence === null || !visible[i]) return;
      var dot = svg("circle", {cx: x(i), cy: y(e.confidence), r: "3",
        fill: e.confidence < 0.5 ? "#c0392b" : "#3b5bdb"});
      var title = document.createElementNS(SVG, "title");
      title.textContent = "#" + (i + 1) + " confidence " + e.confidence.toFixed(2) + ": " + e.decision;
      dot.appendChild(title);
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
