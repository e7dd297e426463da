/* crucible view: the pages. Data from the run (model output, names, errors) is only ever set as text. */
"use strict";
(function () {
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const live = document.getElementById("live");
  const C = window.Charts;
  const fmt = C.fmt;
  const ROW = 28, PAGE = 200;

  // -- DOM helpers ------------------------------------------------------------------------------
  const { el, clear, facts, table } = window.CrucibleDom;
  function enc(runId) { return runId.split("/").map(encodeURIComponent).join("/"); }
  function link(page, runId, query) {
    const url = "/" + page + "/" + enc(runId);
    return query ? url + "?" + new URLSearchParams(query).toString() : url;
  }
  function money(v) { return v === null || v === undefined ? "–" : "$" + (Math.abs(v) < 0.01 && v !== 0 ? v.toFixed(6) : v.toFixed(4)); }
  function cost(v) { return v === null || v === undefined ? "unknown" : money(v); }  // unknown: no price, never $0
  function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }
  function secs(v) { return v === null || v === undefined ? "–" : v < 1 ? (1000 * v).toFixed(0) + " ms" : v.toFixed(2) + " s"; }
  function when(v) {
    if (v === null || v === undefined || v === "") return "–";
    const d = typeof v === "number" ? new Date(v * 1000) : new Date(v);
    return Number.isNaN(d.getTime()) ? String(v) : d.toISOString().replace("T", " ").slice(0, 19);
  }
  // what each run state means, in words (the state itself stays the badge's data-state)
  const STATES = {
    running: "running", complete: "complete", stopped: "stopped early", budget: "budget stop", interrupted: "interrupted",
    stalled: "stalled", failed: "failed", "dry-run": "dry run", declined: "declined",
  };
  const FINISHED = new Set(["complete", "stopped"]);  // a run with its answer
  function stateText(state) { return Object.prototype.hasOwnProperty.call(STATES, state) ? STATES[state] : String(state); }
  function badge(state, reason) {
    return el("span", { class: "badge " + (String(state).replace(/[^a-z-]/g, "")), "data-testid": "state", "data-state": state, title: reason || null, text: stateText(state) });
  }
  function json(value) { return JSON.stringify(value, null, 2); }

  async function api(path, params) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) if (v !== "" && v !== null && v !== undefined) url.searchParams.set(k, v);
    const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error(res.status + ": " + (await res.text()));
    return res.json();
  }
  function showError(err) { main.appendChild(el("p", { class: "error", role: "alert", text: String(err && err.message ? err.message : err) })); }

  function subscribe(runId, handlers) {
    const source = new EventSource(runId ? "/api/stream/" + enc(runId) : "/api/stream");
    for (const [name, fn] of Object.entries(handlers)) source.addEventListener(name, (ev) => fn(JSON.parse(ev.data)));
    window.addEventListener("pagehide", () => source.close());
    return source;
  }
  function throttle(fn, ms) {
    let last = 0, timer = null;
    return function () {
      const wait = ms - (Date.now() - last);
      if (wait <= 0) { last = Date.now(); fn(); }
      else if (!timer) timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, wait);
    };
  }
  function showLive(progress) {
    live.className = progress.state === "running" ? "running" : "";
    live.textContent = stateText(progress.state) + " · " + progress.recorded + "/" + progress.total + " tasks" +
      (progress.state === "running" ? " · " + progress.throughput.toFixed(1) + "/s" : "") + " · " + money(progress.spent);
    live.setAttribute("data-recorded", String(progress.recorded));
  }

  // -- condition toggles (shared by every chart of a run) --------------------------------------------
  function toggles(runId, names, onChange) {
    const key = "crucible-view-hidden:" + runId;
    let hidden;
    try { hidden = new Set(JSON.parse(sessionStorage.getItem(key) || "[]")); } catch (e) { hidden = new Set(); }
    const box = el("div", { class: "legend", role: "group", "aria-label": "conditions shown" });
    names.forEach((name, i) => {
      const b = el("button", { type: "button", "aria-pressed": hidden.has(name) ? "false" : "true", "data-condition": name },
        el("span", { class: "swatch" }), name);
      b.firstChild.style.background = C.palette(i);
      b.addEventListener("click", () => {
        if (hidden.has(name)) hidden.delete(name); else hidden.add(name);
        b.setAttribute("aria-pressed", hidden.has(name) ? "false" : "true");
        sessionStorage.setItem(key, JSON.stringify([...hidden]));
        onChange();
      });
      box.appendChild(b);
    });
    return { node: box, shown: (name) => !hidden.has(name), color: (name) => C.palette(Math.max(0, names.indexOf(name))) };
  }

  // -- navigation ----------------------------------------------------------------------------------
  function setNav(runId, current) {
    clear(nav);
    if (!runId) return;
    for (const [page, label] of [["overview", "Overview"], ["samples", "Samples"], ["disagreements", "Disagreements"], ["latency", "Latency"], ["events", "Events"]]) {
      nav.appendChild(el("a", { href: link(page, runId), "aria-current": page === current ? "page" : null, text: label }));
    }
  }

  // -- runs --------------------------------------------------------------------------------------
  async function runsPage() {
    document.title = "Runs · crucible view";
    const data = await api("/api/runs");
    clear(main);
    main.appendChild(el("h1", { text: "Runs" }));
    main.appendChild(el("p", { class: "muted", text: "under " + data.root }));
    const holder = el("div");
    main.appendChild(holder);
    function render(runs) {
      clear(holder);
      if (!runs.length) { holder.appendChild(el("p", { class: "muted", text: "No run directories here yet (each has a manifest.json)." })); return; }
      holder.appendChild(table(["run", "status", "dataset", "conditions", "items × repeats", "tasks", "spend", "accuracy", "started", "finished"],
        runs.map((r) => [
          el("span", {}, el("a", { href: link("overview", r.id), "data-run": r.id, text: r.name || r.id }), el("br"), el("span", { class: "muted", text: r.id })),
          badge(r.state, r.reason), r.dataset || "–", r.conditions.join(", "), r.items + " × " + (r.repeats ?? "?"),
          r.recorded + " / " + r.total, money(r.spent),
          el("span", {}, Object.entries(r.accuracy).map(([c, a]) => el("div", { class: "cell-clip" }, c + ": " + pct(a)))),
          when(r.created_at), when(r.finished_at),
        ]), { "data-testid": "runs-table" }));
    }
    render(data.runs);
    subscribe(null, { runs: (d) => render(d.runs) });
  }

  // -- overview ------------------------------------------------------------------------------------
  async function overviewPage(runId) {
    const info = await api("/api/run/" + enc(runId));
    document.title = (info.name || runId) + " · crucible view";
    clear(main);
    main.appendChild(el("h1", { text: info.name || runId }));
    if (info.description) main.appendChild(el("p", { text: info.description }));
    if (info.hypothesis) main.appendChild(el("p", { class: "muted" }, "Hypothesis: ", info.hypothesis));
    const factBox = el("div");
    const bar = el("div", { class: "progress", "aria-label": "progress" }, el("div"));
    const seqBox = el("div", { "data-testid": "sequential" });
    main.append(factBox, bar, seqBox);
    const legendSlot = el("div");
    main.appendChild(legendSlot);
    main.appendChild(el("h2", { text: "Conditions (live)" }));
    const quick = el("div", { "data-testid": "quick-summary" });
    main.appendChild(quick);
    main.appendChild(el("h2", { text: "Charts" }));
    const charts = el("div", { class: "charts", "data-testid": "charts" });
    main.appendChild(charts);
    main.appendChild(el("h2", { text: "Paired comparisons" }));
    const comps = el("div", { "data-testid": "comparisons" }, el("p", { class: "muted", text: "Analysing…" }));
    main.appendChild(comps);
    const methods = el("p", { class: "muted" });
    main.appendChild(methods);
    let summary = info.summary, analysis = null;
    const tg = toggles(runId, info.conditions, () => { draw(); renderAnalysis(); });
    legendSlot.appendChild(tg.node);

    function renderFacts(p) {
      const seq = p.sequential;
      const stoppedEarly = p.state === "stopped" && seq && seq.fired;
      clear(factBox).appendChild(facts([
        ["status", badge(p.state, p.reason)], ["tasks", p.recorded + " / " + p.total, "recorded"],
        ["pending", stoppedEarly ? p.pending + " (not needed: the sequential rule stopped the run)" : String(p.pending), "pending"],
        ["errors", String(p.errors)], ["spent", money(p.spent) + (p.budget ? " of " + money(p.budget) : ""), "spent"],
        ["budget used", p.budget_used === null ? "no budget" : pct(p.budget_used)], ["throughput", p.state === "running" ? p.throughput.toFixed(1) + " tasks/s" : "–"],
        ["run", info.run_id || runId], ["started", when(info.created_at)], ["finished", when(p.state === "running" ? null : info.finished_at)],
      ].concat(p.reason ? [["reason", p.reason, "reason"]] : [])));
      bar.firstChild.style.width = (p.total ? (100 * p.recorded) / p.total : 0) + "%";
      bar.className = "progress" + (FINISHED.has(p.state) ? " finished" : "");
      renderSequential(p);
      showLive(p);
    }
    /* A sequential run: its stopping rule, whether and when it fired, each comparison's sequential interval. */
    function renderSequential(p) {
      clear(seqBox);
      if (p.sequential_error) { seqBox.appendChild(el("p", { class: "bad", role: "alert", text: p.sequential_error })); return; }
      const seq = p.sequential;
      if (!seq) return;
      const kind = seq.method === "confidence_sequence" ? "anytime-valid confidence sequences" : "repeated confidence intervals of the O'Brien–Fleming design";
      seqBox.append(el("h2", { text: "Sequential stopping" }),
        el("p", { "data-testid": "sequential-verdict", class: seq.fired ? "ok" : "muted",
          text: seq.fired ? "Stopped early by the sequential rule after " + seq.items_at_stop + " of " + seq.items_total + " items: the comparisons below were settled, so the remaining tasks were not needed."
            : "The sequential rule did not fire" + (FINISHED.has(p.state) ? ": all " + seq.items_total + " items ran." : " (yet): " + seq.items_at_stop + " of " + seq.items_total + " items in its statistics.") }),
        facts([["rule", seq.rule, "sequential-rule"], ["method", seq.method], ["items", seq.items_at_stop + " of " + seq.items_total, "sequential-items"]]),
        table(["comparison", "items", "difference", "sequential interval", "p", "decided", "futile"],
          seq.comparisons.map((c) => [c.b + " − " + c.a, c.n, fmt(c.difference), "[" + fmt(c.confidence_interval[0]) + ", " + fmt(c.confidence_interval[1]) + "]",
            fmt(c.pvalue, 4), c.decided ? "yes" : "no", c.futile ? "yes" : "no"]), { "data-testid": "sequential-table" }),
        el("p", { class: "muted", text: "The intervals are " + kind + (seq.fired ? "; the paired comparisons below are the fixed-n analysis, not adjusted for the stopping rule: for reference only." : ".") }));
    }
    function renderQuick() {
      clear(quick).appendChild(table(["condition", "tasks", "errors", "accuracy", "95% CI (Wilson)", "P50", "P95", "P99", "spend", "$/task", "tokens in/out"],
        summary.map((r) => [r.condition, r.tasks, r.errors, pct(r.accuracy), r.ci ? "[" + pct(r.ci[0]) + ", " + pct(r.ci[1]) + "]" : "–",
          secs(r.p50), secs(r.p95), secs(r.p99), cost(r.spent), cost(r.cost_per_task),
          (r.input_tokens === null ? "–" : r.input_tokens.toFixed(0)) + " / " + (r.output_tokens === null ? "–" : r.output_tokens.toFixed(0))]),
        { "data-testid": "summary-table" }));
    }
    function draw() {
      clear(charts);
      const byName = new Map((analysis ? analysis.conditions : []).map((c) => [c.name, c]));
      const shown = summary.filter((r) => tg.shown(r.condition));
      C.intervals(charts, {
        title: analysis ? "Accuracy (" + Math.round(100 * analysis.config.confidence_level) + "% CI, cluster bootstrap or Wilson)" : "Accuracy (Wilson CI, running)",
        xlabel: "accuracy", domain: [0, 1], format: (v) => fmt(v, 3),
        rows: shown.map((r) => {
          const a = byName.get(r.condition);
          return a && a.accuracy !== null ? { label: r.condition, value: a.accuracy, lo: a.accuracy_ci[0], hi: a.accuracy_ci[1], color: tg.color(r.condition), note: a.tasks + " tasks, " + a.errors + " errors" }
            : { label: r.condition, value: r.accuracy, lo: r.ci && r.ci[0], hi: r.ci && r.ci[1], color: tg.color(r.condition), note: r.tasks + " tasks" };
        }),
      });
      C.bars(charts, { title: "Latency percentiles (completed tasks)", ylabel: "seconds", measures: ["P50", "P95", "P99"], format: secs,
        groups: shown.map((r) => ({ label: r.condition, color: tg.color(r.condition), values: { P50: r.p50, P95: r.p95, P99: r.p99 } })) });
      C.intervals(charts, { title: "Cost per task (t CI)", xlabel: "USD per task", format: (v) => money(v),
        rows: shown.map((r) => {
          const a = byName.get(r.condition);
          return { label: r.condition, value: a ? a.cost_per_query : r.cost_per_task, lo: a ? a.cost_per_query_ci[0] : null, hi: a ? a.cost_per_query_ci[1] : null, color: tg.color(r.condition) };
        }) });
      const front = new Set(analysis ? analysis.frontier : []);
      C.scatter(charts, { title: "Cost–accuracy frontier (squares: on the frontier)", xlabel: "USD per task", ylabel: "accuracy", xformat: (v) => money(v),
        points: shown.map((r) => {
          const a = byName.get(r.condition);
          return { label: r.condition, x: a ? a.cost_per_query : r.cost_per_task, y: a ? a.accuracy : r.accuracy,
            ylo: a ? a.accuracy_ci[0] : r.ci && r.ci[0], yhi: a ? a.accuracy_ci[1] : r.ci && r.ci[1], color: tg.color(r.condition), frontier: front.has(r.condition) };
        }) });
    }
    function renderAnalysis() {
      clear(comps);
      if (!analysis || !analysis.comparisons.length) { comps.appendChild(el("p", { class: "muted", text: analysis ? "No paired comparison yet (needs two conditions on at least two shared items)." : "Analysing…" })); return; }
      const shown = analysis.comparisons.filter((c) => tg.shown(c.a) && tg.shown(c.b));
      comps.appendChild(table(["comparison", "difference", "CI", "Cohen's d_z [CI]", "p", "p adjusted (" + analysis.config.correction + ")", "significant", "power", "items for 80%", "items", "test"],
        shown.map((c) => [c.b + " − " + c.a, fmt(c.difference), "[" + fmt(c.confidence_interval[0]) + ", " + fmt(c.confidence_interval[1]) + "]",
          c.effect ? fmt(c.effect.estimate, 2) + " [" + fmt(c.effect.ci[0], 2) + ", " + fmt(c.effect.ci[1], 2) + "]" : "–",
          fmt(c.pvalue, 4), fmt(c.pvalue_adjusted, 4), c.significant ? "yes" : "no", c.power === null ? "–" : fmt(c.power, 2),
          c.items_needed === null ? "–" : String(c.items_needed), c.n_items, c.method]), { "data-testid": "comparisons-table" }));
      comps.appendChild(el("ul", {}, shown.map((c) => el("li", { text: c.interpretation }))));
      if (analysis.frontier.length) comps.appendChild(el("p", {}, "Cost–accuracy frontier: ", analysis.frontier.join(", ")));
      methods.textContent = (analysis.methods || "") + " Analysis of " + analysis.records + " recorded tasks.";
    }
    async function refreshAnalysis() {
      try { analysis = await api("/api/analysis/" + enc(runId)); } catch (err) { analysis = null; comps.textContent = String(err.message); return; }
      renderAnalysis(); draw();
    }
    const againLater = throttle(refreshAnalysis, 5000);
    renderFacts(info); renderQuick(); draw(); refreshAnalysis();
    subscribe(runId, { progress: (d) => { summary = d.summary; renderFacts(d.progress); renderQuick(); draw(); againLater(); } });
  }

  // -- samples -----------------------------------------------------------------------------------
  const COLUMNS = [
    ["index", "#", "num"], ["condition", "condition"], ["item", "item"], ["repeat", "rep", "num"], ["correct", "verdict"],
    ["prediction", "prediction"], ["latency", "latency", "num"], ["cost", "cost", "num"], ["input_tokens", "tokens in/out", "num"],
    ["attempts", "tries", "num"], ["error_type", "error"],
  ];
  function verdict(r) {
    if (r.status !== "ok") return el("span", { class: "warn", text: "error" });
    if (r.correct === true) return el("span", { class: "ok", text: "✓ correct" });
    if (r.correct === false) return el("span", { class: "bad", text: "✗ wrong" });
    return el("span", { class: "muted", text: "ungraded" });
  }

  async function samplesPage(runId) {
    const params = new URLSearchParams(location.search);
    const state = {
      condition: params.get("condition") || "", outcome: params.get("outcome") || "", error_type: params.get("error_type") || "",
      q: params.get("q") || "", latency_min: params.get("latency_min") || "", latency_max: params.get("latency_max") || "",
      sort: params.get("sort") || "index", order: params.get("order") || "asc",
    };
    // the first page of rows is asked for at once, alongside the filters' values
    const firstRows = api("/api/samples/" + enc(runId), Object.assign({}, state, { offset: 0, limit: PAGE }));
    const facetsData = await api("/api/facets/" + enc(runId));
    document.title = "Samples · " + runId + " · crucible view";
    clear(main);
    main.appendChild(el("h1", { text: "Samples" }));
    const form = el("form", { class: "filters", "data-testid": "filters", role: "search" });
    form.addEventListener("submit", (ev) => ev.preventDefault());
    const chosen = new Set(state.condition ? state.condition.split(",") : []);
    const condBox = el("fieldset", {}, el("legend", { text: "conditions" }));
    facetsData.conditions.forEach((c) => {
      const box = el("input", { type: "checkbox", name: "condition", value: c, checked: chosen.has(c) });
      box.addEventListener("change", () => { if (box.checked) chosen.add(c); else chosen.delete(c); state.condition = [...chosen].join(","); changed(); });
      condBox.appendChild(el("label", {}, box, c));
    });
    function select(name, label, options) {
      const s = el("select", { name: name }, options.map(([v, t]) => el("option", { value: v, selected: state[name] === v, text: t })));
      s.addEventListener("change", () => { state[name] = s.value; changed(); });
      return el("label", {}, label, s);
    }
    function input(name, label, attrs) {
      const i = el("input", Object.assign({ name: name, value: state[name] }, attrs));
      let timer = null;
      i.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { state[name] = i.value.trim(); changed(); }, 250); });
      return el("label", {}, label, i);
    }
    form.append(condBox,
      select("outcome", "outcome", [["", "all"], ["correct", "correct"], ["incorrect", "incorrect"], ["error", "error"], ["ungraded", "ungraded"]]),
      select("error_type", "error kind", [["", "any"]].concat(facetsData.error_types.map((e) => [e, e]))),
      input("q", "search items, text, answers", { type: "search", placeholder: "text…" }),
      input("latency_min", "latency ≥ (s)", { type: "number", step: "any", min: "0" }),
      input("latency_max", "latency ≤ (s)", { type: "number", step: "any", min: "0" }),
      select("sort", "sort by", COLUMNS.map(([k, t]) => [k, t])),
      select("order", "order", [["asc", "ascending"], ["desc", "descending"]]));
    main.appendChild(form);
    const count = el("p", { class: "count", "data-testid": "count", "aria-live": "polite" });
    main.appendChild(count);
    const head = el("div", { class: "vhead", role: "row" }, COLUMNS.map(([k, t, cls]) => {
      const b = el("button", { type: "button", class: cls || null, "data-sort": k, text: t });
      b.addEventListener("click", () => {
        if (state.sort === k) state.order = state.order === "asc" ? "desc" : "asc"; else { state.sort = k; state.order = "asc"; }
        form.querySelector("select[name=sort]").value = state.sort; form.querySelector("select[name=order]").value = state.order;
        changed();
      });
      return b;
    }));
    const scroller = el("div", { class: "vlist", "data-testid": "samples", role: "grid", "aria-rowcount": "0" });
    const spacer = el("div", { class: "spacer" });
    scroller.appendChild(spacer);
    main.append(head, scroller);

    let total = 0, pages = new Map(), generation = 0, lastRecorded = null;
    const pool = [];
    function query(offset) {
      return Object.assign({}, state, { offset: offset, limit: PAGE });
    }
    async function loadPage(p) {
      if (pages.has(p)) return pages.get(p);
      const mine = generation;
      const promise = api("/api/samples/" + enc(runId), query(p * PAGE)).then((d) => {
        if (mine !== generation) return null;
        total = d.total;
        pages.set(p, d.rows);
        return d.rows;
      });
      pages.set(p, promise);
      return promise;
    }
    function rowNode(i) {
      let node = pool[i];
      if (!node) {
        node = el("div", { class: "vrow", role: "row" });
        COLUMNS.forEach(([k, , cls]) => node.appendChild(el("span", { class: cls || null, "data-col": k })));
        node.addEventListener("click", () => { if (node.dataset.item !== undefined) location.href = link("item", runId, { item: node.dataset.item }); });
        pool[i] = node;
        scroller.appendChild(node);
      }
      return node;
    }
    function fill(node, r, position) {
      node.style.top = position * ROW + "px";
      node.hidden = false;
      node.dataset.item = r.item;
      node.dataset.index = String(r.index);
      const cells = node.children;
      const values = [String(r.index), r.condition, r.item, r.repeat === null ? "–" : String(r.repeat), null, r.prediction + (r.truncated ? "…" : ""),
        secs(r.latency), cost(r.cost), (r.input_tokens ?? "–") + " / " + (r.output_tokens ?? "–"), r.attempts === null ? "–" : String(r.attempts), r.error_type || ""];
      values.forEach((v, j) => {
        if (j === 4) { clear(cells[j]).appendChild(verdict(r)); return; }
        cells[j].textContent = v;
        cells[j].title = v;
      });
    }
    function render() {
      spacer.style.height = total * ROW + "px";
      scroller.setAttribute("aria-rowcount", String(total));
      const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - 5);
      const last = Math.min(total, first + Math.ceil((scroller.clientHeight || 600) / ROW) + 10);
      let used = 0;
      const wanted = new Set();
      for (let i = first; i < last; i++) {
        const p = Math.floor(i / PAGE);
        const rows = pages.get(p);
        if (!Array.isArray(rows)) { wanted.add(p); continue; }
        const r = rows[i - p * PAGE];
        if (!r) continue;
        fill(rowNode(used++), r, i);
      }
      for (let j = used; j < pool.length; j++) pool[j].hidden = true;
      for (const p of wanted) loadPage(p).then((rows) => { if (rows) render(); }).catch(showError);
    }
    async function reload(keepScroll) {
      generation++;
      pages = new Map();
      const first = keepScroll ? Math.floor(Math.floor(scroller.scrollTop / ROW) / PAGE) : 0;
      if (!keepScroll) scroller.scrollTop = 0;
      const rows = await loadPage(first);
      if (rows === null) return;
      count.textContent = total + " of " + (lastRecorded ?? "?") + " tasks";
      count.setAttribute("data-total", String(total));
      render();
    }
    function changed() {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(state)) if (v && !(k === "sort" && v === "index") && !(k === "order" && v === "asc")) q.set(k, v);
      history.replaceState(null, "", location.pathname + (q.toString() ? "?" + q : ""));
      reload(false).catch(showError);
    }
    scroller.addEventListener("scroll", () => window.requestAnimationFrame(render), { passive: true });
    window.addEventListener("resize", render);
    const refresh = throttle(() => reload(true).catch(showError), 1000);
    let seenVersion = null;
    subscribe(runId, { progress: (d) => {
      lastRecorded = d.progress.recorded;
      showLive(d.progress);
      if (seenVersion !== null && d.progress.version !== seenVersion) refresh();
      else count.textContent = total + " of " + lastRecorded + " tasks";
      seenVersion = d.progress.version;
    } });
    const rows = await firstRows;
    total = rows.total;
    pages.set(0, rows.rows);
    count.textContent = total + " tasks";
    count.setAttribute("data-total", String(total));
    render();
  }

  // -- one item ----------------------------------------------------------------------------------
  const SHOWN = new Set(["_index", "key", "condition", "item", "repeat", "status", "prediction", "correct", "score", "latency", "cost", "input_tokens", "output_tokens", "metadata", "error_type", "error", "attempts", "wall_time", "started_at", "finished_at", "seed"]);
  async function itemPage(runId) {
    const item = new URLSearchParams(location.search).get("item") || "";
    const data = await api("/api/item/" + enc(runId), { item: item });
    document.title = item + " · crucible view";
    clear(main);
    main.appendChild(el("p", {}, el("a", { href: link("samples", runId), text: "← samples" })));
    main.appendChild(el("h1", { "data-testid": "item-title", text: data.item }));
    main.appendChild(el("h2", { text: "Input" }));
    main.appendChild(el("pre", { "data-testid": "item-input", text: data.input === null || data.input === undefined ? "(the item's text is not stored in the run; only its id)" : typeof data.input === "string" ? data.input : json(data.input) }));
    main.appendChild(el("h2", { text: "Reference answer" }));
    main.appendChild(el("pre", { "data-testid": "item-reference", text: data.reference === null ? "(none recorded)" : data.reference }));
    main.appendChild(el("h2", { text: "Answers by condition" }));
    const grid = el("div", { class: "grid", "data-testid": "answers" });
    for (const [condition, records] of Object.entries(data.conditions)) {
      const card = el("section", { class: "card", "data-condition": condition }, el("h3", { text: condition }));
      for (const r of records) {
        const extra = Object.fromEntries(Object.entries(r).filter(([k]) => !SHOWN.has(k)));
        card.appendChild(el("div", { class: "attempt", "data-repeat": String(r.repeat) },
          el("div", {}, el("strong", { text: "repeat " + r.repeat + " · " }), verdict(r), r.score !== null && r.score !== undefined ? " · score " + fmt(r.score, 3) : ""),
          el("pre", { class: "prediction", text: r.prediction === null || r.prediction === undefined ? "(no answer)" : typeof r.prediction === "string" ? r.prediction : json(r.prediction) }),
          r.error ? el("pre", { class: "bad", text: (r.error_type || "error") + ": " + r.error }) : null,
          facts([["latency", secs(r.latency)], ["cost", cost(r.cost)], ["tokens", (r.input_tokens ?? "–") + " in / " + (r.output_tokens ?? "–") + " out"],
            ["attempts", String(r.attempts ?? "–")], ["finished", when(r.finished_at)]]),
          el("div", { class: "muted", "data-testid": "why" }, "verdict by the run's scorer, ", el("code", { text: String(data.scorer ?? "unknown") }), ": ",
            r.correct === null || r.correct === undefined ? (r.status === "error" ? "not graded (the task failed)" : "not graded") : data.code ? (r.correct ? "the problem's tests passed against this completion" : "the problem's tests failed against this completion") : (r.correct ? "the answer matches the reference" : "the answer does not match the reference")),
          data.code ? sandboxBox(runId, r) : null,
          (r.metadata && r.metadata.trace) || (typeof r.prediction === "string" && r.prediction.includes("<event")) ? el("p", {}, el("a", { href: "/trace/" + enc(runId) + "?index=" + r._index, target: "_blank", rel: "noopener noreferrer", class: "trace-link", text: "open this task's reasoning trace" })) : null,
          r.metadata && Object.keys(r.metadata).length ? el("details", {}, el("summary", { text: "metadata (verdict details, model, votes)" }), el("pre", { text: json(r.metadata) })) : null,
          Object.keys(extra).length ? el("details", {}, el("summary", { text: "other fields" }), el("pre", { text: json(extra) })) : null));
      }
      grid.appendChild(card);
    }
    main.appendChild(grid);
  }

  /* A code task's program run again in the sandbox, on request (POST with a custom header). */
  function sandboxBox(runId, r) {
    const out = el("div", { class: "sandbox", "data-testid": "sandbox" });
    const button = el("button", { type: "button", "data-testid": "sandbox-run", text: "run the program in the sandbox" });
    button.addEventListener("click", async () => {
      button.disabled = true;
      clear(out).appendChild(el("p", { class: "muted", text: "running…" }));
      try {
        const res = await fetch("/api/sandbox/" + enc(runId) + "?index=" + r._index, { method: "POST", credentials: "same-origin", headers: { Accept: "application/json", "X-Crucible-View": "1" } });
        if (!res.ok) throw new Error(res.status + ": " + (await res.text()));
        const d = await res.json();
        clear(out).append(facts([["sandbox", d.status, "sandbox-status"], ["reason", d.reason], ["exit code", String(d.returncode ?? "–")], ["time", secs(d.duration)], ["backend", d.backend],
          ["recorded verdict", d.recorded_verdict === null ? "–" : d.recorded_verdict ? "passed" : "failed"]]),
          d.message ? el("pre", { class: "bad", text: (d.error_type ? d.error_type + ": " : "") + d.message }) : null,
          d.stdout ? el("pre", { text: d.stdout }) : null, d.stderr ? el("pre", { "data-testid": "sandbox-stderr", text: d.stderr }) : null,
          el("details", {}, el("summary", { text: "the program the scorer ran" }), el("pre", { text: d.program })));
      } catch (err) { clear(out).appendChild(el("p", { class: "error", text: String(err.message || err) })); }
      button.disabled = false;
    });
    return el("div", {}, button, out);
  }

  // -- disagreements -----------------------------------------------------------------------------
  async function disagreementsPage(runId) {
    const info = await api("/api/run/" + enc(runId));
    document.title = "Disagreements · " + runId + " · crucible view";
    clear(main);
    const names = info.conditions;
    const params = new URLSearchParams(location.search);
    const state = { a: params.get("a") || "", b: params.get("b") || "", direction: params.get("direction") || "" };
    main.appendChild(el("h1", { text: "Disagreements" }));
    main.appendChild(el("p", { class: "muted", text: "Items on which the conditions' per-item accuracy differs. For one pair with one repeat these are McNemar's discordant pairs." }));
    const form = el("form", { class: "filters", "data-testid": "pair" });
    form.addEventListener("submit", (ev) => ev.preventDefault());
    function select(name, label, options) {
      const s = el("select", { name: name }, options.map(([v, t]) => el("option", { value: v, selected: state[name] === v, text: t })));
      s.addEventListener("change", () => { state[name] = s.value; history.replaceState(null, "", location.pathname + "?" + new URLSearchParams(state)); load(0); });
      return el("label", {}, label, s);
    }
    form.append(select("a", "condition A", [["", "any two conditions"]].concat(names.map((n) => [n, n]))),
      select("b", "condition B", [["", "—"]].concat(names.map((n) => [n, n]))),
      select("direction", "which way", [["", "either"], ["a", "A right, B wrong"], ["b", "B right, A wrong"]]));
    main.appendChild(form);
    const summary = el("p", { "data-testid": "pair-counts" });
    const holder = el("div");
    const more = el("button", { type: "button", text: "Show more" });
    main.append(summary, holder, el("div", { class: "pager" }, more));
    let offset = 0, rows = [];
    async function load(start) {
      const d = await api("/api/disagreements/" + enc(runId), Object.assign({ offset: start, limit: 100 }, state));
      rows = start === 0 ? d.rows : rows.concat(d.rows);
      offset = start + d.rows.length;
      summary.textContent = d.total + " item(s)" + (d.pair ? " · A right, B wrong: " + d.pair.a_only + " · B right, A wrong: " + d.pair.b_only + " · agree: " + d.pair.same : "");
      summary.setAttribute("data-total", String(d.total));
      more.hidden = offset >= d.total;
      clear(holder).appendChild(table(["item"].concat(d.conditions.map((c) => c)).concat(["first answers"]), rows.map((r) => [
        el("a", { href: link("item", runId, { item: r.item }), text: r.item }),
        ...r.accuracy.map((a, i) => el("span", { class: a === null ? "muted" : a === 1 ? "ok" : a === 0 ? "bad" : "warn", text: r.graded[i] ? r.correct[i] + "/" + r.graded[i] : "–" })),
        el("span", {}, r.predictions.map((p, i) => (p === null ? null : el("div", { class: "cell-clip" }, d.conditions[i] + ": " + p)))),
      ]), { "data-testid": "disagreements-table" }));
    }
    more.addEventListener("click", () => load(offset).catch(showError));
    await load(0);
  }

  // -- latency -------------------------------------------------------------------------------------
  async function latencyPage(runId) {
    const [info, data] = await Promise.all([api("/api/run/" + enc(runId)), api("/api/latency/" + enc(runId))]);
    document.title = "Latency · " + runId + " · crucible view";
    clear(main);
    main.appendChild(el("h1", { text: "Latency" }));
    const charts = el("div", { class: "charts", "data-testid": "charts" });
    const tg = toggles(runId, info.conditions, () => draw());
    const pcts = el("div");
    main.append(tg.node, charts, el("h2", { text: "Percentiles (completed tasks)" }), pcts);
    const hedges = el("div", { "data-testid": "hedges" });
    main.append(el("h2", { text: "Hedged requests" }), hedges);
    function draw() {
      clear(charts);
      const shown = data.conditions.filter((c) => tg.shown(c.condition) && c.n);
      const edges = data.edges;
      C.lines(charts, { title: "Histogram (log-spaced bins)", xlabel: "latency (s)", ylabel: "tasks", logX: true, step: true, xformat: (v) => fmt(v, 2),
        series: shown.map((c) => ({ label: c.condition, color: tg.color(c.condition),
          points: c.counts.map((n, i) => [edges[i], n, secs(edges[i]) + "–" + secs(edges[i + 1]) + ": " + n + " tasks"]).concat([[edges[edges.length - 1], 0]]) })) });
      C.lines(charts, { title: "ECDF", xlabel: "latency (s)", ylabel: "share of tasks ≤ x", logX: true, step: true, ymax: 1, xformat: (v) => fmt(v, 2), yformat: (v) => fmt(v, 2),
        series: shown.map((c) => ({ label: c.condition, color: tg.color(c.condition), points: c.ecdf })) });
      clear(pcts).appendChild(table(["condition", "tasks", "P50", "P95", "P99"], shown.map((c) => [c.condition, c.n, secs(c.p50), secs(c.p95), secs(c.p99)]), { "data-testid": "latency-table" }));
    }
    draw();
    if (data.hedges.length) {
      C.timeline(hedges, { title: "Attempts of hedged tasks", rows: data.hedges.map((h) => ({ label: h.condition + " · " + h.item + " #" + h.repeat, attempts: h.attempts })) });
    } else {
      hedges.appendChild(el("p", { class: "muted", text: "No hedged attempts recorded in this run's task metadata." }));
    }
  }

  // -- events --------------------------------------------------------------------------------------
  async function eventsPage(runId) {
    document.title = "Events · " + runId + " · crucible view";
    clear(main);
    main.appendChild(el("h1", { text: "Events" }));
    main.appendChild(el("p", { class: "muted", text: "Telemetry events captured during the run (each session writes its events to events.jsonl when it ends)." }));
    const params = new URLSearchParams(location.search);
    const state = { name: params.get("name") || "", q: params.get("q") || "", offset: 0 };
    const form = el("form", { class: "filters", "data-testid": "event-filters" });
    form.addEventListener("submit", (ev) => ev.preventDefault());
    const nameSelect = el("select", { name: "name" }, el("option", { value: "", text: "all events" }));
    const search = el("input", { type: "search", name: "q", value: state.q, placeholder: "text…" });
    form.append(el("label", {}, "event", nameSelect), el("label", {}, "search", search));
    const summary = el("p", { class: "count", "data-testid": "count" });
    const holder = el("div");
    const prev = el("button", { type: "button", text: "← previous" }), next = el("button", { type: "button", text: "next →" });
    const traceList = el("div", { "data-testid": "traces" });
    main.append(form, summary, holder, el("div", { class: "pager" }, prev, next), el("h2", { text: "Reasoning traces" }), traceList);
    const traced = await api("/api/traces/" + enc(runId));
    const traceOf = new Map(traced.rows.map((t) => [t.condition + "\u001f" + t.item, t.index]));
    function traceLink(index, label) {
      return el("a", { href: "/trace/" + enc(runId) + "?index=" + index, target: "_blank", rel: "noopener noreferrer", class: "trace-link", text: label });
    }
    if (traced.rows.length) {
      traceList.appendChild(el("p", { class: "muted", text: traced.total + " task(s) carry a crucible-trace chain; each opens in the trace viewer." }));
      traceList.appendChild(table(["condition", "item", "trace"], traced.rows.map((t) => [t.condition, t.item, traceLink(t.index, "open trace")]), { "data-testid": "traces-table" }));
    } else {
      traceList.appendChild(el("p", { class: "muted", text: "No task of this run carries a reasoning trace (metadata.trace or <event> tags in its answer)." }));
    }
    let names = null;
    async function load() {
      const d = await api("/api/events/" + enc(runId), { name: state.name, q: state.q, offset: state.offset, limit: 200 });
      if (names === null) {
        names = d.names;
        for (const [n, k] of Object.entries(names).sort()) nameSelect.appendChild(el("option", { value: n, selected: n === state.name, text: n + " (" + k + ")" }));
      }
      summary.textContent = d.total + " event(s)" + (d.total ? ", showing " + (d.offset + 1) + "–" + (d.offset + d.rows.length) : "");
      summary.setAttribute("data-total", String(d.total));
      prev.disabled = state.offset === 0; next.disabled = state.offset + d.rows.length >= d.total;
      clear(holder).appendChild(table(["time", "event", "condition", "item", "repeat", "measurements", "metadata", "trace"],
        d.rows.map((e) => {
          const t = traceOf.get(e.condition + "\u001f" + e.item);
          return [when(e.time), e.name, e.condition ?? "–", e.item ?? "–", e.repeat ?? "–", el("code", { text: JSON.stringify(e.measurements || {}) }), el("code", { text: JSON.stringify(e.metadata || {}) }), t === undefined ? "–" : traceLink(t, "trace")];
        }),
        { "data-testid": "events-table" }));
    }
    function changed() { state.offset = 0; history.replaceState(null, "", location.pathname + "?" + new URLSearchParams({ name: state.name, q: state.q })); load().catch(showError); }
    nameSelect.addEventListener("change", () => { state.name = nameSelect.value; changed(); });
    let timer = null;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { state.q = search.value.trim(); changed(); }, 250); });
    prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - 200); load().catch(showError); });
    next.addEventListener("click", () => { state.offset += 200; load().catch(showError); });
    await load();
  }

  // -- router ------------------------------------------------------------------------------------
  const PAGES = { overview: overviewPage, samples: samplesPage, item: itemPage, disagreements: disagreementsPage, latency: latencyPage, events: eventsPage };
  function route() {
    const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    if (!parts.length) { setNav(null); return runsPage(); }
    const page = parts[0], runId = parts.slice(1).join("/");
    const fn = PAGES[page];
    if (!fn || !runId) { clear(main).appendChild(el("p", { class: "error", text: "No such page." })); return Promise.resolve(); }
    setNav(runId, page === "item" ? "samples" : page);
    if (page !== "overview") api("/api/run/" + enc(runId)).then(showLive).catch(() => {});
    return fn(runId);
  }
  route().then(() => document.body.setAttribute("data-ready", "1"), (err) => { clear(main); showError(err); document.body.setAttribute("data-ready", "error"); });
})();
