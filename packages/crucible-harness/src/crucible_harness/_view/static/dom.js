/* crucible view: DOM helpers shared by the viewer and the labs. Data is only ever set as text
   (textContent, attribute values); no HTML is parsed from data, no inline handler is set. */
"use strict";
(function () {
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) throw new Error("no inline handlers");
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = String(v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function facts(pairs) {
    return el("dl", { class: "facts" }, pairs.map(([k, v, id]) => el("div", {}, el("dt", { text: k }), el("dd", { "data-fact": id || null }, v))));
  }
  function table(headers, rows, attrs) {
    return el("div", { class: "scroll-x" }, el("table", attrs || {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => (c instanceof Node ? el("td", {}, c) : el("td", { class: typeof c === "number" ? "num" : null }, c === null || c === undefined ? "–" : String(c)))))))));
  }
  window.CrucibleDom = { el, clear, facts, table };
})();
