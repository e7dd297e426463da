/* crucible view: small SVG charts. Every label and tooltip is set as text (textContent), never as markup. */
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2f5bd3", "#d9480f", "#2b8a3e", "#ae3ec9", "#e67700", "#0b7285", "#c2255c", "#5c940d", "#495057", "#1864ab"];
  const tips = new WeakMap();

  function palette(i) { return COLORS[i % COLORS.length]; }

  function s(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, value, attrs) {
    const t = s("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = String(value);
    return t;
  }

  function tooltip() { return document.getElementById("tooltip"); }

  function hover(node, message) {
    tips.set(node, message);
    node.addEventListener("mouseenter", show);
    node.addEventListener("mousemove", move);
    node.addEventListener("mouseleave", hide);
    node.setAttribute("tabindex", "0");
    node.addEventListener("focus", show);
    node.addEventListener("blur", hide);
    const title = s("title", {}, node);
    title.textContent = message;
  }
  function show(ev) {
    const tip = tooltip();
    if (!tip) return;
    tip.textContent = tips.get(ev.currentTarget) || "";
    tip.hidden = false;
    move(ev);
  }
  function move(ev) {
    const tip = tooltip();
    if (!tip || ev.clientX === undefined) return;
    tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 300) + "px";
    tip.style.top = ev.clientY + 14 + "px";
  }
  function hide() { const tip = tooltip(); if (tip) tip.hidden = true; }

  function fmt(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const d = digits === undefined ? 3 : digits;
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return Number(v).toFixed(d);
  }

  function linear(d0, d1, r0, r1) {
    const span = d1 - d0 || 1;
    const f = (v) => r0 + ((v - d0) / span) * (r1 - r0);
    f.ticks = (n) => niceTicks(d0, d1, n);
    return f;
  }
  function logScale(d0, d1, r0, r1) {
    const l0 = Math.log10(d0), l1 = Math.log10(d1), span = l1 - l0 || 1;
    const f = (v) => r0 + ((Math.log10(Math.max(v, d0)) - l0) / span) * (r1 - r0);
    f.ticks = () => {
      const out = [];
      for (let e = Math.floor(l0); e <= Math.ceil(l1); e++) {
        for (const m of [1, 2, 5]) {
          const v = m * Math.pow(10, e);
          if (v >= d0 * 0.999 && v <= d1 * 1.001) out.push(v);
        }
      }
      return out.length >= 2 ? out : [d0, d1];
    };
    return f;
  }
  function niceTicks(a, b, n) {
    if (!(b > a)) return [a];
    const raw = (b - a) / Math.max(1, n), p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((st) => st >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(a / step) * step; v <= b + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  function frame(container, title, height) {
    const box = document.createElement("figure");
    box.className = "chart";
    const h = document.createElement("h3");
    h.textContent = title;
    box.appendChild(h);
    const svg = s("svg", { viewBox: "0 0 640 " + height, role: "img", "aria-label": title });
    box.appendChild(svg);
    container.appendChild(box);
    return svg;
  }

  function xAxis(svg, scale, y, x0, x1, label, format) {
    const g = s("g", { class: "axis" }, svg);
    s("line", { x1: x0, x2: x1, y1: y, y2: y }, g);
    for (const t of scale.ticks(6)) {
      const x = scale(t);
      s("line", { x1: x, x2: x, y1: y, y2: y + 4 }, g);
      text(g, x, y + 16, format ? format(t) : fmt(t, 2), { "text-anchor": "middle" });
    }
    if (label) text(g, (x0 + x1) / 2, y + 32, label, { "text-anchor": "middle", class: "muted" });
  }
  function yAxis(svg, scale, x, y0, y1, label, format) {
    const g = s("g", { class: "axis" }, svg);
    s("line", { x1: x, x2: x, y1: y0, y2: y1 }, g);
    const grid = s("g", { class: "grid" }, svg);
    for (const t of scale.ticks(5)) {
      const y = scale(t);
      s("line", { x1: x, x2: 630, y1: y, y2: y }, grid);
      text(g, x - 6, y + 4, format ? format(t) : fmt(t, 2), { "text-anchor": "end" });
    }
    if (label) text(g, 14, (y0 + y1) / 2, label, { transform: "rotate(-90 14 " + (y0 + y1) / 2 + ")", "text-anchor": "middle" });
  }

  /* Horizontal point estimates with interval whiskers, one row per condition. */
  function intervals(container, opts) {
    const rows = opts.rows.filter((r) => r.value !== null && r.value !== undefined);
    const height = 40 + 30 * Math.max(1, rows.length) + 36;
    const svg = frame(container, opts.title, height);
    const left = 200, right = 620;
    if (!rows.length) { text(svg, 320, height / 2, "no data yet", { "text-anchor": "middle" }); return svg; }
    let lo = opts.domain ? opts.domain[0] : Math.min(...rows.map((r) => (r.lo ?? r.value)));
    let hi = opts.domain ? opts.domain[1] : Math.max(...rows.map((r) => (r.hi ?? r.value)));
    if (!(hi > lo)) { lo -= 0.05; hi += 0.05; }
    const x = linear(lo, hi, left, right);
    rows.forEach((r, i) => {
      const y = 30 + i * 30;
      const label = text(svg, left - 8, y + 4, r.label.length > 28 ? r.label.slice(0, 27) + "…" : r.label, { "text-anchor": "end" });
      hover(label, r.label);
      const g = s("g", { class: "mark", "data-series": r.label }, svg);
      if (r.lo !== null && r.lo !== undefined && r.hi !== null && r.hi !== undefined) {
        s("line", { x1: x(r.lo), x2: x(r.hi), y1: y, y2: y, stroke: r.color, "stroke-width": 2 }, g);
        s("line", { x1: x(r.lo), x2: x(r.lo), y1: y - 6, y2: y + 6, stroke: r.color, "stroke-width": 2 }, g);
        s("line", { x1: x(r.hi), x2: x(r.hi), y1: y - 6, y2: y + 6, stroke: r.color, "stroke-width": 2 }, g);
      }
      s("circle", { cx: x(r.value), cy: y, r: 5, fill: r.color }, g);
      hover(g, r.label + ": " + (opts.format || fmt)(r.value) + (r.lo !== null && r.lo !== undefined ? "  [" + (opts.format || fmt)(r.lo) + ", " + (opts.format || fmt)(r.hi) + "]" : "") + (r.note ? "\n" + r.note : ""));
    });
    xAxis(svg, x, 30 + rows.length * 30, left, right, opts.xlabel, opts.format);
    return svg;
  }

  /* Grouped bars: one group per condition, one bar per measure (e.g. P50, P95, P99). */
  function bars(container, opts) {
    const groups = opts.groups;
    const measures = opts.measures;
    const height = 260;
    const svg = frame(container, opts.title, height);
    const left = 70, right = 630, top = 20, bottom = height - 60;
    const max = Math.max(1e-9, ...groups.flatMap((g) => measures.map((m) => g.values[m] || 0)));
    const y = linear(0, max * 1.1, bottom, top);
    yAxis(svg, y, left, top, bottom, opts.ylabel);
    const gw = (right - left) / Math.max(1, groups.length);
    const bw = Math.min(28, (gw - 12) / measures.length);
    groups.forEach((g, i) => {
      const gx = left + i * gw + (gw - bw * measures.length) / 2;
      const gg = s("g", { class: "mark", "data-series": g.label }, svg);
      measures.forEach((m, j) => {
        const v = g.values[m];
        if (v === null || v === undefined) return;
        const rect = s("rect", { x: gx + j * bw, y: y(v), width: bw - 2, height: Math.max(0, bottom - y(v)), fill: g.color, "fill-opacity": 1 - j * 0.28 }, gg);
        hover(rect, g.label + " " + m + ": " + (opts.format || fmt)(v));
      });
      const label = g.label.length > 18 ? g.label.slice(0, 17) + "…" : g.label;
      text(svg, left + i * gw + gw / 2, bottom + 16, label, { "text-anchor": "middle" });
    });
    text(svg, right, height - 12, measures.join(" · ") + " (lighter = higher)", { "text-anchor": "end" });
    return svg;
  }

  /* A scatter of conditions with vertical interval whiskers; frontier points joined by a line. */
  function scatter(container, opts) {
    const pts = opts.points.filter((p) => p.x !== null && p.y !== null && p.x !== undefined && p.y !== undefined);
    const height = 300;
    const svg = frame(container, opts.title, height);
    const left = 70, right = 620, top = 20, bottom = height - 50;
    if (!pts.length) { text(svg, 320, 150, "no data yet", { "text-anchor": "middle" }); return svg; }
    let x0 = Math.min(...pts.map((p) => p.x)), x1 = Math.max(...pts.map((p) => p.x));
    let y0 = Math.min(...pts.map((p) => (p.ylo ?? p.y))), y1 = Math.max(...pts.map((p) => (p.yhi ?? p.y)));
    const px = (x1 - x0) * 0.1 || Math.abs(x0) * 0.1 || 1e-4, py = (y1 - y0) * 0.1 || 0.05;
    x0 -= px; x1 += px; y0 = Math.max(0, y0 - py); y1 = Math.min(1, y1 + py);
    const x = linear(x0, x1, left, right), y = linear(y0, y1, bottom, top);
    yAxis(svg, y, left, top, bottom, opts.ylabel);
    xAxis(svg, x, bottom, left, right, opts.xlabel, opts.xformat);
    const front = pts.filter((p) => p.frontier).sort((a, b) => a.x - b.x);
    if (front.length > 1) {
      s("polyline", { points: front.map((p) => x(p.x) + "," + y(p.y)).join(" "), fill: "none", stroke: "#98a2b3", "stroke-dasharray": "4 3" }, svg);
    }
    pts.forEach((p) => {
      const g = s("g", { class: "mark", "data-series": p.label }, svg);
      if (p.ylo !== null && p.ylo !== undefined) s("line", { x1: x(p.x), x2: x(p.x), y1: y(p.ylo), y2: y(p.yhi), stroke: p.color, "stroke-width": 2 }, g);
      s(p.frontier ? "rect" : "circle", p.frontier ? { x: x(p.x) - 5, y: y(p.y) - 5, width: 10, height: 10, fill: p.color } : { cx: x(p.x), cy: y(p.y), r: 5, fill: p.color }, g);
      hover(g, p.label + "\n" + opts.xlabel + ": " + (opts.xformat || fmt)(p.x) + "\n" + opts.ylabel + ": " + fmt(p.y) + (p.ylo !== null && p.ylo !== undefined ? " [" + fmt(p.ylo) + ", " + fmt(p.yhi) + "]" : "") + (p.frontier ? "\non the frontier" : ""));
    });
    return svg;
  }

  /* Lines (optionally steps) over a linear or log x axis, with a hover marker per point. */
  function lines(container, opts) {
    const series = opts.series.filter((se) => se.points.length);
    const height = 300;
    const svg = frame(container, opts.title, height);
    const left = 70, right = 620, top = 20, bottom = height - 50;
    if (!series.length) { text(svg, 320, 150, "no data yet", { "text-anchor": "middle" }); return svg; }
    const xs = series.flatMap((se) => se.points.map((p) => p[0]));
    const ys = series.flatMap((se) => se.points.map((p) => p[1]));
    let x0 = Math.min(...xs), x1 = Math.max(...xs);
    if (!(x1 > x0)) { x1 = x0 * 1.1 + 1e-6; }
    const x = opts.logX && x0 > 0 ? logScale(x0, x1, left, right) : linear(x0, x1, left, right);
    const ylo = opts.ymin ?? Math.min(0, ...ys);
    const y = linear(ylo, opts.ymax || ylo + Math.max(1e-9, Math.max(...ys) - ylo) * 1.05, bottom, top);
    yAxis(svg, y, left, top, bottom, opts.ylabel, opts.yformat);
    xAxis(svg, x, bottom, left, right, opts.xlabel, opts.xformat);
    series.forEach((se) => {
      const g = s("g", { class: "mark", "data-series": se.label }, svg);
      let d = "";
      se.points.forEach((p, i) => {
        const px = x(p[0]), py = y(p[1]);
        if (i === 0) d += "M" + px + " " + (opts.step ? y(0) : py) + (opts.step ? "L" + px + " " + py : "");
        else d += opts.step ? "H" + px + "V" + py : "L" + px + " " + py;
      });
      s("path", { d: d, fill: "none", stroke: se.color, "stroke-width": 1.8 }, g);
      const every = Math.max(1, Math.floor(se.points.length / 60));
      se.points.forEach((p, i) => {
        if (i % every !== 0 && i !== se.points.length - 1) return;
        const dot = s("circle", { cx: x(p[0]), cy: y(p[1]), r: 3.5, fill: se.color, "fill-opacity": 0.01, stroke: "none" }, g);
        hover(dot, se.label + "\n" + opts.xlabel + ": " + (opts.xformat || fmt)(p[0]) + "\n" + opts.ylabel + ": " + (opts.yformat || fmt)(p[1]) + (p[2] ? "\n" + p[2] : ""));
      });
    });
    return svg;
  }

  /* Attempts of hedged requests, one row per task, on the request's clock (ms). */
  function timeline(container, opts) {
    const rows = opts.rows;
    const height = 40 + 18 * rows.length + 30;
    const svg = frame(container, opts.title, height);
    const left = 200, right = 620;
    const end = Math.max(1, ...rows.flatMap((r) => r.attempts.map((a) => a.end_ms ?? a.start_ms)));
    const x = linear(0, end, left, right);
    const colors = { won: "#2b8a3e", cancelled: "#98a2b3", failed: "#b42318", lost: "#e67700" };
    rows.forEach((r, i) => {
      const y = 24 + i * 18;
      const label = text(svg, left - 8, y + 10, r.label.length > 30 ? r.label.slice(0, 29) + "…" : r.label, { "text-anchor": "end" });
      hover(label, r.label);
      r.attempts.forEach((a) => {
        const x1 = x(a.start_ms), x2 = x(a.end_ms ?? end);
        const rect = s("rect", { x: x1, y: y, width: Math.max(2, x2 - x1), height: 12, fill: colors[a.outcome] || "#2f5bd3" }, svg);
        hover(rect, r.label + "\nattempt " + a.index + " (" + a.outcome + "): " + fmt(a.start_ms, 0) + "–" + (a.end_ms === null ? "…" : fmt(a.end_ms, 0)) + " ms");
      });
    });
    xAxis(svg, x, 30 + rows.length * 18, left, right, "ms from the request's start", (v) => fmt(v, 0));
    return svg;
  }

  window.Charts = { palette, intervals, bars, scatter, lines, timeline, fmt };
})();
