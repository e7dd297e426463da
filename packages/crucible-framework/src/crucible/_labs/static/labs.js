/* crucible labs: four interactive pages on the viewer's server. Every number comes from the
   server's crucible computation; data (questions, answers, traces) is only ever set as text. */
"use strict";
(function () {
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const live = document.getElementById("live");
  const C = window.Charts;
  const fmt = C.fmt;
  const LABS = [
    ["ensemble", "Ensemble reliability", "Five simulated models answer real MMLU medical questions; switch the voting strategy and watch accuracy, consensus, cost and the paired test against the best member."],
    ["hedging", "Hedging simulator", "A heavy-tailed latency profile (or your own telemetry) through crucible-hedging's simulator: fixed, percentile, adaptive or no hedging; P99 cut against extra load, with a budget."],
    ["compare", "Statistical comparison", "An A/B of two simulated models on real GSM8K problems: the paired analysis as items complete (McNemar, CI, effect size, Holm-corrected p, MDE), then a full harness report."],
    ["trace", "Causal trace explorer", "A seeded simulated model reasons about a GSM8K problem in crucible-trace tags; the parser reads them as they stream: timeline, alternatives, confidence over time, search."],
  ];

  const { el, clear, facts, table } = window.CrucibleDom;
  function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }
  function ms(v) { return v === null || v === undefined || Number.isNaN(v) ? "–" : v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(0) + " ms"; }
  function money(v) { return v === null || v === undefined ? "–" : "$" + v.toFixed(4); }
  function pval(v) { return v === null || v === undefined ? "–" : v < 0.001 ? "< .001" : v.toFixed(3); }
  function ci(pair, f) { return pair && pair[0] !== null && pair[0] !== undefined ? "[" + (f || fmt)(pair[0]) + ", " + (f || fmt)(pair[1]) + "]" : "–"; }
  async function api(path, params, method) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) if (v !== "" && v !== null && v !== undefined) url.searchParams.set(k, v);
    const res = await fetch(url, { method: method || "GET", credentials: "same-origin", headers: { Accept: "application/json", "X-Crucible-Lab": "1" } });
    if (!res.ok) throw new Error(res.status + ": " + (await res.text()));
    return res.json();
  }
  function showError(holder, err) { holder.appendChild(el("p", { class: "error", role: "alert", "data-testid": "error", text: String(err && err.message ? err.message : err) })); }
  function sleep(t) { return new Promise((r) => setTimeout(r, t)); }

  /* A form of controls bound to the address (so a setting can be shared as a link). */
  function controls(fields, onRun) {
    const params = new URLSearchParams(location.search);
    const form = el("form", { class: "filters", "data-testid": "controls" });
    const inputs = {};
    for (const f of fields) {
      let input;
      if (f.options) {
        input = el("select", { name: f.name }, f.options.map(([v, t]) => el("option", { value: v, selected: (params.get(f.name) ?? f.value) === v, text: t })));
      } else if (f.area) {
        input = el("textarea", { name: f.name, placeholder: f.placeholder || "" });
        input.value = params.get(f.name) ?? f.value ?? "";
      } else {
        input = el("input", { name: f.name, type: f.type || "number", step: f.step || "any", min: f.min ?? null, max: f.max ?? null, value: params.get(f.name) ?? f.value, placeholder: f.placeholder || null });
      }
      inputs[f.name] = input;
      form.appendChild(el("label", {}, f.label, input));
    }
    const run = el("button", { type: "submit", "data-testid": "run", text: "Run" });
    const speed = el("select", { name: "speed", "aria-label": "speed" }, [["300", "watch"], ["80", "fast"], ["0", "all at once"]].map(([v, t]) => el("option", { value: v, text: t })));
    form.append(el("label", {}, "pace", speed), run);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const values = {};
      for (const [k, i] of Object.entries(inputs)) values[k] = i.value.trim();
      history.replaceState(null, "", location.pathname + "?" + new URLSearchParams(values));
      onRun(values, Number(speed.value));
    });
    return { form, inputs, values() { const v = {}; for (const [k, i] of Object.entries(inputs)) v[k] = i.value.trim(); return v; }, speed };
  }

  /* Reveals a run in steps: asks the server for the analysis of each growing prefix. A new run
     (`begin`) makes every older one stop, and nothing older is drawn after it. */
  function stepper(status) {
    let token = 0;
    return {
      begin() { status.removeAttribute("data-done"); status.setAttribute("data-upto", "0"); return ++token; },
      current(t) { return t === token; },
      async play(t, total, steps, pace, fetchUpto, draw) {
        const step = pace === 0 ? total : Math.max(1, Math.ceil(total / steps));
        let upto = Math.min(total, step);
        for (;;) {
          const d = await fetchUpto(upto);
          if (t !== token) return false;
          draw(d);
          status.textContent = upto + " / " + total;
          status.setAttribute("data-upto", String(upto));
          if (upto >= total) { status.setAttribute("data-done", "1"); return true; }
          if (pace) await sleep(pace);
          if (t !== token) return false;
          upto = Math.min(total, upto + step);
        }
      },
    };
  }

  function banner(text) { return el("p", { class: "banner", "data-testid": "simulated", text: text }); }

  // -- index --------------------------------------------------------------------------------------
  function indexPage() {
    document.title = "crucible labs";
    clear(main);
    main.append(el("h1", { text: "Labs" }), el("p", { class: "muted" }, "Real crucible code on the embedded default: simulated models, real datasets. Runs are in ", el("a", { href: "/", text: "the viewer" }), "."));
    main.appendChild(el("div", { class: "lab-grid", "data-testid": "labs" }, LABS.map(([id, title, text]) =>
      el("section", { class: "lab-card" }, el("h2", {}, el("a", { href: "/labs/" + id, text: title })), el("p", { text: text })))));
    return Promise.resolve();
  }

  // -- 1. ensemble ---------------------------------------------------------------------------------
  async function ensemblePage() {
    document.title = "Ensemble reliability · crucible labs";
    clear(main);
    main.appendChild(el("h1", { text: "Ensemble reliability" }));
    const ctl = controls([
      { name: "strategy", label: "strategy", value: "majority", options: [["majority", "majority"], ["weighted", "weighted (log-odds)"], ["unanimous", "unanimous"], ["cascade", "cascade (cheapest first)"]] },
      { name: "rho", label: "error correlation ρ", value: "0.3", min: 0, max: 1, step: "0.05" },
      { name: "n", label: "questions", value: "200", min: 10, max: 1000, step: "1" },
      { name: "seed", label: "seed", value: "0", min: 0, step: "1" },
    ], (v, pace) => start(v, pace).catch((e) => showError(out, e)));
    const status = el("span", { "data-testid": "progress" });
    const out = el("div");
    main.append(ctl.form, el("p", {}, "questions answered: ", status), out);
    const runs_ = stepper(status);
    let items = [];
    async function start(v, pace) {
      const t = runs_.begin();
      clear(out);
      const feed = el("div", { class: "feed", "data-testid": "votes" });
      const charts = el("div", { class: "charts", "data-testid": "charts" });
      const summary = el("div"), test = el("div", { "data-testid": "test" });
      const first = await api("/api/lab/ensemble", Object.assign({}, v, { upto: 0 }));
      if (!runs_.current(t)) return;
      items = [];
      out.append(banner(first.simulated), el("h2", { text: "Votes as they arrive (latest first)" }), feed, charts, el("h2", { text: "Systems" }), summary, el("h2", { text: "Ensemble against the best member (paired)" }), test);
      await runs_.play(t, first.total, 40, pace, (upto) => api("/api/lab/ensemble", Object.assign({}, v, { upto: upto, since: items.length })),
        (d) => { items = items.concat(d.items); render(d, feed, charts, summary, test); });
    }
    function chip(answer, right) { return el("span", { class: "chip " + (answer === null || answer === undefined ? "none" : right ? "ok" : "bad"), text: answer ?? "–" }); }
    function render(d, feed, charts, summary, test) {
      clear(feed);
      for (const it of items.slice(-12).reverse()) {
        feed.appendChild(el("div", { class: "vote-row", "data-item": it.id },
          el("strong", { text: it.id.split("/").slice(-3).join("/") }),
          Object.entries(it.votes).map(([m, a]) => el("span", {}, m.replace("sim:", "") + " ", chip(a, a === it.reference))),
          el("span", {}, " → ensemble ", chip(it.answer, it.correct.ensemble)), el("span", { class: "muted", text: " reference " + it.reference + " · consensus " + pct(it.consensus) })));
      }
      clear(charts);
      const colors = {};
      d.systems.forEach((s, i) => { colors[s.system] = C.palette(i); });
      C.intervals(charts, { title: "Accuracy with 95% Wilson intervals", xlabel: "accuracy", format: pct, domain: [0, 1],
        rows: d.systems.map((s) => ({ label: s.system, value: s.accuracy, lo: s.ci[0], hi: s.ci[1], color: colors[s.system] })) });
      C.scatter(charts, { title: "Cost against accuracy", xlabel: "USD per question", ylabel: "accuracy", xformat: (x) => "$" + fmt(x, 4),
        points: d.systems.map((s) => ({ label: s.system, x: s.cost_per_item, y: s.accuracy, ylo: s.ci[0], yhi: s.ci[1], color: colors[s.system], frontier: s.system === "ensemble" })) });
      clear(summary).append(facts([["strategy", d.strategy], ["questions", String(d.upto), "upto"], ["mean consensus", pct(d.consensus), "consensus"],
        ["members called per question", fmt(d.members_called, 2)], ["abstained", String(d.abstained)]]),
        table(["system", "accuracy", "95% CI", "correct", "cost (USD)"], d.systems.map((s) => [s.system, pct(s.accuracy), ci(s.ci, pct), s.correct + "/" + s.n, money(s.cost)]), { "data-testid": "systems-table" }));
      clear(test);
      if (d.test && !d.test.error) {
        test.append(facts([["best member", d.best_member], ["difference (member − ensemble)", fmt(d.test.difference, 3)], ["95% CI", ci(d.test.ci)], ["p (" + d.test.method + ")", pval(d.test.pvalue), "pvalue"],
          ["discordant pairs", d.test.discordant[0] + " / " + d.test.discordant[1]]]), el("p", { text: d.test.interpretation }));
      } else if (d.test) test.appendChild(el("p", { class: "muted", text: d.test.error }));
    }
    ctl.form.requestSubmit();
  }

  // -- 2. hedging ----------------------------------------------------------------------------------
  async function hedgingPage() {
    document.title = "Hedging simulator · crucible labs";
    clear(main);
    main.appendChild(el("h1", { text: "Hedging simulator" }));
    let runs = [];
    try { runs = (await api("/api/runs")).runs; } catch (e) { runs = []; }
    const ctl = controls([
      { name: "policy", label: "policy", value: "percentile", options: [["percentile", "percentile"], ["fixed", "fixed delay"], ["adaptive", "adaptive"], ["none", "none"]] },
      { name: "value", label: "knob (s · percentile · rate)", value: "", placeholder: "default" },
      { name: "budget", label: "budget (backups/request)", value: "", placeholder: "none" },
      { name: "p50", label: "P50 (s)", value: "0.5" }, { name: "p95", label: "P95 (s)", value: "2" }, { name: "p99", label: "P99 (s)", value: "5" },
      { name: "tail", label: "slow tail share", value: "0.1", min: 0, max: 0.9, step: "0.01" },
      { name: "run", label: "or latencies of a run", value: "", options: [["", "—"]].concat(runs.map((r) => [r.id, r.id])) },
      { name: "samples", label: "or your latencies (ms)", area: true, value: "", placeholder: "e.g. 420 515 388 2900 …" },
      { name: "n", label: "requests", value: "5000", min: 100, max: 50000, step: "1" },
      { name: "seed", label: "seed", value: "0", min: 0, step: "1" },
    ], (v, pace) => start(v, pace).catch((e) => showError(out, e)));
    const status = el("span", { "data-testid": "progress" });
    const out = el("div");
    main.append(ctl.form, el("p", {}, "requests simulated: ", status), out);
    const runs_ = stepper(status);
    async function start(v, pace) {
      const t = runs_.begin();
      clear(out);
      const first = await api("/api/lab/hedging", Object.assign({}, v, { upto: 0 }));
      if (!runs_.current(t)) return;
      const charts = el("div", { class: "charts", "data-testid": "charts" }), numbers = el("div"), timeline = el("div", { "data-testid": "timeline" }), sweep = el("div", { class: "charts", "data-testid": "sweep" });
      out.append(banner(first.simulated), charts, numbers, el("h2", { text: "Hedges firing (the last 20 requests)" }), timeline, el("h2", { text: "P99 against extra load (the policy's knob swept)" }), sweep);
      drawSweep(first, sweep);
      await runs_.play(t, first.total, 25, pace, (upto) => api("/api/lab/hedging", Object.assign({}, v, { upto: upto })), (d) => render(d, charts, numbers, timeline));
    }
    function render(d, charts, numbers, timeline) {
      clear(charts);
      const e = d.edges;
      const series = [["hedged", d.hedged, "#2f5bd3"], ["no hedging", d.unhedged, "#98a2b3"]].filter((s) => s[1]).map(([label, s, color]) => ({ label, color,
        points: s.counts.map((n, i) => [e[i], n, ms(1000 * e[i]) + "–" + ms(1000 * e[i + 1]) + ": " + n + " requests"]).concat([[e[e.length - 1], 0]]) }));
      C.lines(charts, { title: "Latency histogram (log-spaced bins)", xlabel: "latency (s)", ylabel: "requests", logX: true, step: true, xformat: (x) => fmt(x, 2), series: series });
      clear(numbers).append(facts([["hedge rate", pct(d.hedge_rate), "hedge_rate"], ["extra load", pct(d.extra_load), "extra_load"], ["backups that won", String(d.backup_wins ?? "–")],
        ["P99 hedged", ms(d.hedged && 1000 * d.hedged.p99), "p99"], ["P99 without", ms(d.unhedged && 1000 * d.unhedged.p99), "p99_base"]]),
        table(["", "P50", "P95", "P99"], [["hedged", ms(1000 * d.hedged.p50), ms(1000 * d.hedged.p95), ms(1000 * d.hedged.p99)], ["no hedging", ms(1000 * d.unhedged.p50), ms(1000 * d.unhedged.p95), ms(1000 * d.unhedged.p99)]], { "data-testid": "percentiles" }),
        el("p", { class: "muted", text: "Whole run (" + d.report.requests + " requests): " + d.report.policy + " · hedges fired " + d.report.hedges_fired + " · denied by the budget " + d.report.budget_denied + " · P99 cut " + pct(d.report.p99_reduction) }));
      clear(timeline);
      if (d.timeline.length) C.timeline(timeline, { title: "Attempts (green won, grey cancelled)", rows: d.timeline });
    }
    function drawSweep(d, holder) {
      clear(holder);
      if (!d.sweep.length) { holder.appendChild(el("p", { class: "muted", text: "No hedging: nothing to sweep." })); return; }
      const pts = d.sweep.slice().sort((a, b) => a.extra_load - b.extra_load);
      C.lines(holder, { title: "P99 latency against extra load", xlabel: "extra attempts per request", ylabel: "P99 (ms)", xformat: (x) => pct(x),
        series: [{ label: d.policy, color: "#2f5bd3", points: pts.map((s) => [s.extra_load, s.p99_ms, "knob " + s.value + " · cut " + pct(s.p99_reduction)]) },
          { label: "no hedging", color: "#98a2b3", points: [[pts[0].extra_load, pts[0].baseline_p99_ms], [pts[pts.length - 1].extra_load, pts[0].baseline_p99_ms]] }] });
      holder.appendChild(table(["knob", "extra load", "P99", "P99 without", "cut"], d.sweep.map((s) => [s.value, pct(s.extra_load), ms(s.p99_ms), ms(s.baseline_p99_ms), pct(s.p99_reduction)]), { "data-testid": "sweep-table" }));
    }
    ctl.form.requestSubmit();
  }

  // -- 3. statistical comparison ------------------------------------------------------------------
  async function comparePage() {
    document.title = "Statistical comparison · crucible labs";
    clear(main);
    main.appendChild(el("h1", { text: "Statistical comparison lab" }));
    const ctl = controls([
      { name: "acc_a", label: "A accuracy", value: "0.87", step: "0.01" }, { name: "price_a", label: "A $/query", value: "0.002", step: "0.001" }, { name: "latency_a", label: "A P50 latency (s)", value: "0.8", step: "0.1" },
      { name: "acc_b", label: "B accuracy", value: "0.91", step: "0.01" }, { name: "price_b", label: "B $/query", value: "0.005", step: "0.001" }, { name: "latency_b", label: "B P50 latency (s)", value: "0.6", step: "0.1" },
      { name: "rho", label: "error correlation ρ", value: "0.5", step: "0.05" }, { name: "n", label: "problems", value: "300", step: "1" }, { name: "seed", label: "seed", value: "0", step: "1" },
    ], (v, pace) => start(v, pace).catch((e) => showError(out, e)));
    const status = el("span", { "data-testid": "progress" });
    const out = el("div");
    const report = el("button", { type: "button", "data-testid": "report", text: "Generate the reports (a harness run)" });
    const reportOut = el("div", { "data-testid": "report-out" });
    main.append(ctl.form, el("p", {}, "problems completed: ", status), out, el("h2", { text: "Reports" }), report, reportOut);
    const runs_ = stepper(status);
    report.addEventListener("click", async () => {
      clear(reportOut).appendChild(el("p", { class: "muted", text: "Running the experiment through crucible-harness…" }));
      try {
        const r = await api("/api/lab/compare/report", ctl.values(), "POST");
        clear(reportOut).append(el("p", {}, "Recorded as a run: ", el("a", { href: "/overview/" + r.run.split("/").map(encodeURIComponent).join("/"), "data-testid": "report-run", text: r.run }), " (" + r.run_dir + ")"),
          el("p", { class: "muted", text: "Report files: " + Object.values(r.reports).join(", ") }), el("pre", { "data-testid": "report-markdown", text: r.markdown || "" }));
      } catch (e) { clear(reportOut); showError(reportOut, e); }
    });
    async function start(v, pace) {
      const t = runs_.begin();
      clear(out);
      const first = await api("/api/lab/compare", Object.assign({}, v, { upto: 0 }));
      if (!runs_.current(t)) return;
      const charts = el("div", { class: "charts", "data-testid": "charts" }), numbers = el("div", { "data-testid": "analysis" });
      out.append(banner(first.simulated), charts, numbers);
      const history = [];
      await runs_.play(t, first.total, 30, pace, (upto) => api("/api/lab/compare", Object.assign({}, v, { upto: upto, since: upto })), (d) => {
        if (d.accuracy && !d.accuracy.error) history.push([d.upto, d.accuracy.difference, d.accuracy.ci[0], d.accuracy.ci[1]]);
        render(d, history, charts, numbers);
      });
    }
    function render(d, history, charts, numbers) {
      clear(charts);
      C.intervals(charts, { title: "Accuracy with 95% Wilson intervals", xlabel: "accuracy", format: pct, domain: [0, 1],
        rows: [["A", d.a, "#2f5bd3"], ["B", d.b, "#e67700"]].map(([l, s, c]) => ({ label: l, value: s.accuracy, lo: s.ci[0], hi: s.ci[1], color: c })) });
      C.lines(charts, { title: "A − B with its 95% CI as problems complete", xlabel: "problems", ylabel: "difference", yformat: (y) => fmt(y, 3),
        series: [{ label: "difference", color: "#1d2330", points: history.map((h) => [h[0], h[1], "A − B = " + fmt(h[1], 3)]) },
          { label: "CI low", color: "#98a2b3", points: history.map((h) => [h[0], h[2], "low " + fmt(h[2], 3)]) },
          { label: "CI high", color: "#98a2b3", points: history.map((h) => [h[0], h[3], "high " + fmt(h[3], 3)]) }] });
      const acc = d.accuracy, lat = d.latency;
      const rows = [];
      if (acc && !acc.error) rows.push(["accuracy (A − B)", fmt(acc.difference, 4), ci(acc.ci), acc.method, pval(acc.pvalue), pval(acc.pvalue_holm), "Cohen's h " + fmt(acc.cohens_h, 3)]);
      if (lat && !lat.error) rows.push(["latency (A − B, s)", fmt(lat.estimate, 4), ci(lat.ci), lat.test, pval(lat.pvalue), pval(lat.pvalue_holm), lat.effect + " " + fmt(lat.effect_size, 3)]);
      clear(numbers).append(facts([["problems", String(d.upto), "upto"], ["A accuracy", pct(d.a.accuracy)], ["B accuracy", pct(d.b.accuracy)], ["A cost", money(d.a.cost)], ["B cost", money(d.b.cost)],
        ["MDE at 80% power", d.mde ? fmt(d.mde.difference, 3) : "–", "mde"]]),
        table(["measure", "estimate", "95% CI", "test", "p", "p (Holm)", "effect size"], rows, { "data-testid": "tests-table" }),
        acc && acc.interpretation ? el("p", { text: acc.interpretation }) : null, d.mde ? el("p", { class: "muted", text: "MDE: " + d.mde.method + "." }) : null);
    }
    ctl.form.requestSubmit();
  }

  // -- 4. causal trace explorer -------------------------------------------------------------------
  async function tracePage() {
    document.title = "Causal trace explorer · crucible labs";
    clear(main);
    main.appendChild(el("h1", { text: "Causal trace explorer" }));
    const ctl = controls([
      { name: "problem", label: "GSM8K test problem #", value: "0", min: 0, step: "1" },
      { name: "seed", label: "seed", value: "0", min: 0, step: "1" },
      { name: "q", label: "search the events", type: "search", value: "", placeholder: "e.g. answer" },
    ], (v, pace) => start(v, pace).catch((e) => showError(out, e)));
    const status = el("span", { "data-testid": "progress" });
    const out = el("div");
    main.append(ctl.form, el("p", {}, "characters streamed: ", status), out);
    const runs_ = stepper(status);
    async function start(v, pace) {
      const t = runs_.begin();
      clear(out);
      const first = await api("/api/lab/trace", Object.assign({}, v, { upto: 0 }));
      if (!runs_.current(t)) return;
      const viewer = el("a", { href: "/lab-trace?" + new URLSearchParams({ problem: v.problem, seed: v.seed }), target: "_blank", rel: "noopener noreferrer", "data-testid": "open-viewer", text: "open the whole chain in crucible-trace's viewer" });
      const raw = el("pre", { "data-testid": "raw" }), stats = el("div"), charts = el("div", { class: "charts", "data-testid": "charts" }), list = el("ol", { class: "events-list", "data-testid": "events" }), warnings = el("div", { "data-testid": "warnings" });
      out.append(banner(first.simulated), el("h2", { text: "Problem" }), el("pre", { "data-testid": "problem", text: first.problem }), el("p", {}, viewer),
        el("div", { class: "charts" }, el("div", {}, el("h2", { text: "Model output, as it streams" }), raw), el("div", {}, el("h2", { text: "Confidence over the chain" }), charts)), stats,
        el("h2", { text: "Timeline of events" }), list, el("h2", { text: "Parser warnings" }), warnings);
      await runs_.play(t, first.length, 30, pace, (upto) => api("/api/lab/trace", Object.assign({}, v, { upto: upto })), (d) => render(d, raw, stats, charts, list, warnings));
    }
    function render(d, raw, stats, charts, list, warnings) {
      raw.textContent = d.text;
      raw.scrollTop = raw.scrollHeight;
      clear(charts);
      C.lines(charts, { title: "Confidence by event", xlabel: "event", ylabel: "confidence", ymax: 1, yformat: (y) => fmt(y, 2), xformat: (x) => fmt(x, 0),
        series: [{ label: "confidence", color: "#2f5bd3", points: d.events.filter((e) => e.confidence !== null).map((e) => [e.position, e.confidence, e.type + ": " + e.decision]) }] });
      const s = d.statistics;
      clear(stats).appendChild(facts([["events", String(d.events.length), "events"], ["decision points", s ? String(s.decision_points) : "–"], ["mean confidence", s ? fmt(s.mean_confidence, 2) : "–"],
        ["below 0.6", s ? String(s.low_confidence) : "–"], ["search matches", String(d.matches), "matches"], ["warnings", String(d.warnings.length), "warnings"]]));
      clear(list);
      for (const e of d.events) {
        const bar = el("span", { class: "conf" }, el("span", {}));
        if (e.confidence !== null) bar.firstChild.style.width = (100 * e.confidence).toFixed(0) + "%";
        list.appendChild(el("li", { class: e.match ? "match" : null, "data-type": e.type },
          el("div", {}, el("strong", { text: e.position + ". " + e.type }), " · confidence ", e.confidence === null ? "–" : fmt(e.confidence, 2), " ", bar),
          el("div", { class: "decision", text: e.decision }),
          e.alternatives.length ? el("div", { class: "muted", text: "alternatives: " + e.alternatives.join(" · ") }) : null,
          e.reasoning ? el("div", { class: "muted", text: "why: " + e.reasoning }) : null));
      }
      clear(warnings).appendChild(d.warnings.length ? table(["line", "column", "message", "text"], d.warnings.map((w) => [w.line, w.column, w.message, w.snippet])) : el("p", { class: "muted", text: "none" }));
    }
    ctl.form.requestSubmit();
  }

  const PAGES = { ensemble: ensemblePage, hedging: hedgingPage, compare: comparePage, trace: tracePage };
  function route() {
    const parts = location.pathname.split("/").filter(Boolean);
    const name = parts[1];
    clear(nav);
    nav.appendChild(el("a", { href: "/", text: "runs" }));
    for (const [id, title] of LABS) nav.appendChild(el("a", { href: "/labs/" + id, "aria-current": id === name ? "page" : null, text: title }));
    if (!name) return indexPage();
    const fn = PAGES[name];
    if (!fn) { clear(main).appendChild(el("p", { class: "error", text: "No such lab." })); return Promise.resolve(); }
    return fn();
  }
  route().then(() => document.body.setAttribute("data-ready", "1"), (err) => { clear(main); showError(main, err); document.body.setAttribute("data-ready", "error"); });
})();
