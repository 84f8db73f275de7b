// The experiment page: GET /experiments, then GET /experiments/{name}/report, drawn as
// tables and two SVG charts. No framework, nothing from a CDN; data never goes in innerHTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path) {
  let res;
  try {
    res = await fetch(path);
  } catch (err) {
    throw new Error("Can't reach the movierec server. Check that it is running.");
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.detail || `The server answered ${res.status}.`);
  return body;
}

const num = (x, d = 4) => (x === null || x === undefined ? "–" : Number(x).toPrecision(d));
const pct = (x) => (x === null || x === undefined ? "–" : `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}%`);
const share = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)}%`);
const pval = (p) => (p === null || p === undefined ? "–" : p < 0.001 ? "< 0.001" : p.toFixed(3));
const pis = (p) => (p !== null && p !== undefined && p < 0.001 ? "p < 0.001" : `p = ${pval(p)}`);

function showAlert(message) {
  const a = $("#alert");
  a.textContent = message;
  a.hidden = !message;
}

// -- charts --------------------------------------------------------------------------------
function scale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

function niceRange(values) {
  const v = values.filter((x) => x !== null && Number.isFinite(x));
  if (!v.length) return [-1, 1];
  let lo = Math.min(...v), hi = Math.max(...v);
  if (lo === hi) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.08;
  return [lo - pad, hi + pad];
}

function axisLabels(g, y, lo, hi, x0, fmt) {
  for (const v of [lo, (lo + hi) / 2, hi]) {
    g.append(svg("text", { x: x0 - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v)));
  }
}

// A line with a band: xs (days), ys, lo, hi; `ref` is the no-effect line (0 lift, 0.5 share).
function bandChart(box, xs, ys, lo, hi, ref, fmt) {
  const W = 640, H = 260, L = 56, R = 12, T = 12, B = 30;
  const [y0, y1] = niceRange([...lo, ...hi, ...ys, ref]);
  const x = scale(Math.min(...xs), Math.max(...xs), L, W - R);
  const y = scale(y0, y1, H - B, T);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, "data-points": xs.length });
  root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  root.append(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  const ok = xs.map((_, i) => lo[i] !== null && hi[i] !== null && ys[i] !== null);
  const pts = xs.map((v, i) => [v, i]).filter(([, i]) => ok[i]);
  if (pts.length) {
    const top = pts.map(([v, i]) => `${x(v)},${y(hi[i])}`);
    const bottom = pts.slice().reverse().map(([v, i]) => `${x(v)},${y(lo[i])}`);
    root.append(svg("polygon", { class: "band", points: [...top, ...bottom].join(" ") }));
    root.append(svg("polyline", { class: "line", points: pts.map(([v, i]) => `${x(v)},${y(ys[i])}`).join(" ") }));
    for (const [v, i] of pts) root.append(svg("circle", { class: "dot", cx: x(v), cy: y(ys[i]), r: 3 }));
  }
  if (ref >= y0 && ref <= y1) root.append(svg("line", { class: "zero", x1: L, x2: W - R, y1: y(ref), y2: y(ref) }));
  const g = svg("g");
  axisLabels(g, y, y0, y1, L, fmt);
  g.append(svg("text", { x: L, y: H - 8 }, `day ${num(Math.min(...xs), 2)}`));
  g.append(svg("text", { x: W - R, y: H - 8, "text-anchor": "end" }, `day ${num(Math.max(...xs), 2)}`));
  root.append(g);
  box.replaceChildren(root);
}

function barChart(box, names, means, lo, hi, control) {
  const W = 420, H = 260, L = 56, R = 12, T = 12, B = 30;
  const [y0raw, y1] = niceRange([...lo, ...hi, ...means, 0]);
  const y0 = Math.min(0, y0raw);
  const y = scale(y0, y1, H - B, T);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, "data-bars": names.length });
  root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: y(0), y2: y(0) }));
  const slot = (W - L - R) / names.length;
  names.forEach((n, i) => {
    const cx = L + slot * (i + 0.5), w = Math.min(70, slot * 0.55);
    if (means[i] !== null) {
      root.append(svg("rect", {
        class: "bar" + (n === control ? " control" : ""), x: cx - w / 2, width: w,
        y: Math.min(y(means[i]), y(0)), height: Math.abs(y(0) - y(means[i])),
      }));
    }
    if (lo[i] !== null && hi[i] !== null) {
      root.append(svg("line", { class: "whisker", x1: cx, x2: cx, y1: y(lo[i]), y2: y(hi[i]) }));
      for (const v of [lo[i], hi[i]]) {
        root.append(svg("line", { class: "whisker", x1: cx - 8, x2: cx + 8, y1: y(v), y2: y(v) }));
      }
    }
    root.append(svg("text", { x: cx, y: H - 10, "text-anchor": "middle" }, n));
  });
  const g = svg("g");
  axisLabels(g, y, y0, y1, L, (v) => num(v, 3));
  root.append(g);
  box.replaceChildren(root);
}

// -- tables --------------------------------------------------------------------------------
function cell(main, ci, cls) {
  const td = el("td", cls ? { class: cls } : {}, main);
  if (ci) td.append(el("span", { class: "ci" }, ci));
  return td;
}

function renderVariants(rep) {
  const t = $("#variants");
  t.replaceChildren();
  if (rep.experiment.mode === "interleave") {
    t.append(el("tr", {}, el("th", {}, "variant"), el("th", {}, "model"), el("th", {}, "units won"),
      el("th", {}, "credited clicks")));
    for (const v of rep.variants) {
      t.append(el("tr", {}, el("td", { class: "name" }, v.name), el("td", {}, v.model),
        el("td", {}, String(v.wins)), el("td", {}, String(v.clicks))));
    }
    return;
  }
  const head = el("tr", {}, el("th", {}, "variant"), el("th", {}, "units"), el("th", {}, "exposures"));
  for (const m of rep.metrics) head.append(el("th", {}, m));
  t.append(head);
  for (const v of rep.variants) {
    const tr = el("tr", {}, el("td", { class: "name" }, v.name + (v.control ? " (control)" : "") + ` · ${v.model}`),
      el("td", {}, v.units.toLocaleString()), el("td", {}, v.exposures.toLocaleString()));
    for (const m of rep.metrics) {
      const s = v.metrics[m];
      tr.append(cell(num(s.mean), s.ci_low === null ? "" : `[${num(s.ci_low, 3)}, ${num(s.ci_high, 3)}]`));
    }
    t.append(tr);
  }
}

function renderComparisons(rep) {
  const t = $("#comparisons");
  t.replaceChildren();
  $("#comparisons-panel").hidden = rep.experiment.mode === "interleave";
  if (rep.experiment.mode === "interleave") return;
  t.append(el("tr", {}, ...["variant", "metric", "difference", "lift", "p", "Holm p"].map((h) => el("th", {}, h))));
  for (const c of rep.comparisons) {
    const d = c.diff, l = c.lift;
    t.append(el("tr", { "data-metric": c.metric },
      el("td", { class: "name" }, c.variant),
      el("td", { class: "name" }, c.metric + (c.in_family ? " ★" : "")),
      cell(num(d.estimate), `[${num(d.ci_low, 3)}, ${num(d.ci_high, 3)}]`),
      cell(pct(l.estimate), `[${pct(l.ci_low)}, ${pct(l.ci_high)}]`),
      el("td", {}, pval(d.pvalue)),
      el("td", c.significant ? { class: "sig" } : {}, c.in_family ? pval(c.pvalue_holm) : "–")));
  }
}

function renderExtras(rep) {
  const ul = $("#extras");
  ul.replaceChildren();
  const add = (text) => ul.append(el("li", {}, text));
  if (rep.experiment.mode === "interleave") {
    const i = rep.interleave;
    add(`Preference for ${i.b}: ${share(i.share_b)} [${share(i.ci_low)}, ${share(i.ci_high)}] (exact binomial ${pis(i.pvalue)}; ${i.ties} units tied or did not click).`);
    return;
  }
  for (const s of (rep.timeline && rep.timeline.series) || []) {
    const q = s.sequential;
    add(`Sequential (mSPRT) ${s.variant} on ${s.metric}: always-valid ${pis(q.pvalue)}, confidence sequence [${num(q.ci_low, 3)}, ${num(q.ci_high, 3)}] — stopping now is valid: ${q.can_stop ? "yes" : "no"}.`);
  }
  for (const c of rep.cuped) {
    add(`CUPED ${c.variant} on ${c.metric} (covariate: ${c.covariate}): variance reduced by ${share(c.variance_reduction)}, interval ${num(c.ci_width_raw, 3)} → ${num(c.ci_width_cuped, 3)} (${share(c.interval_shrink)} narrower).`);
  }
  for (const [v, p] of Object.entries(rep.power || {})) {
    if (p) add(`Minimum detectable effect for ${v} at ${p.n_control} + ${p.n_treatment} units (power 80%): ${num(p.mde, 3)} absolute, ${pct(p.mde_relative)} of ${num(p.baseline, 3)}.`);
  }
}

function renderCharts(rep) {
  const tl = rep.timeline;
  const t0 = rep.experiment.start ? Date.parse(rep.experiment.start) / 1000 : rep.first_exposure;
  if (rep.experiment.mode === "interleave") {
    $("#lift-title").textContent = "Preference share over time";
    $("#lift-note").textContent = "Share of deciding units preferring " + rep.interleave.b + ", with its 95% exact band; 50% is no preference.";
    if (tl) bandChart($("#lift-chart"), tl.ts.map((t) => (t - t0) / 86400), tl.share_b, tl.ci_low, tl.ci_high, 0.5, share);
    $("#bars-title").textContent = "Units won";
    $("#bars-note").textContent = "Units whose credited clicks favoured each ranker (ties left out).";
    const v = rep.variants;
    barChart($("#bars-chart"), v.map((x) => x.name), v.map((x) => x.wins), v.map(() => null), v.map(() => null), null);
    return;
  }
  const metric = rep.experiment.primary_metric;
  const s = tl && tl.series.find((x) => x.metric === metric);
  $("#lift-title").textContent = `Cumulative lift of ${metric} over time`;
  $("#lift-note").textContent = s ? `${s.variant} vs control, relative lift with its 95% delta-method band, at each look.` : "No comparison yet.";
  if (s) bandChart($("#lift-chart"), tl.ts.map((t) => (t - t0) / 86400), s.lift, s.lift_low, s.lift_high, 0, pct);
  $("#bars-title").textContent = `${metric} per variant`;
  $("#bars-note").textContent = "Bars: mean per unit; whiskers: 95% interval.";
  const v = rep.variants.map((x) => x.metrics[metric]);
  barChart($("#bars-chart"), rep.variants.map((x) => x.name), v.map((x) => x.mean), v.map((x) => x.ci_low),
    v.map((x) => x.ci_high), rep.experiment.control);
}

function render(rep) {
  const e = rep.experiment;
  $("#exp-title").textContent = `Experiment ${e.name}`;
  const vs = Object.entries(e.variants).map(([n, v]) => `${n}: ${v.model}`).join(" · ");
  $("#exp-sub").textContent = `${e.mode === "interleave" ? "Team-draft interleaving" : "A/B test"} on ${e.unit}s (${e.status}) — ${vs}. Primary metric: ${e.mode === "interleave" ? "preference" : e.primary_metric}.`;
  const srm = $("#srm");
  if (rep.srm) {
    srm.hidden = false;
    srm.className = "srm " + (rep.srm.flagged ? "bad" : "ok");
    const counts = Object.entries(rep.srm.counts).map(([n, c]) => `${n} ${c}`).join(", ");
    srm.textContent = rep.srm.flagged
      ? `Sample ratio mismatch (${pis(rep.srm.pvalue)}): units ${counts} do not match the configured weights. No verdict until it is explained.`
      : `Sample ratio check passed (${pis(rep.srm.pvalue)}): units ${counts}.`;
  } else {
    srm.hidden = true;
  }
  $("#verdict").textContent = rep.verdict.text;
  $("#stop").textContent = rep.verdict.can_stop === null || rep.verdict.can_stop === undefined ? "" : `stopping now is valid: ${rep.verdict.can_stop ? "yes" : "no"}`;
  $("#warnings").replaceChildren(...rep.warnings.map((w) => el("li", {}, w)));
  $("#units").textContent = `${rep.units.toLocaleString()} units · ${rep.exposures.toLocaleString()} exposures`;
  renderVariants(rep);
  renderComparisons(rep);
  renderExtras(rep);
  renderCharts(rep);
  $("#report").hidden = false;
}

async function load(name) {
  showAlert("");
  try {
    const rep = await api(`/experiments/${encodeURIComponent(name)}/report`);
    render(rep);
    document.body.dataset.ready = "true";
  } catch (err) {
    $("#report").hidden = true;
    showAlert(err.message);
    document.body.dataset.ready = "true";
  }
}

async function main() {
  const sel = $("#exp-select");
  let list;
  try {
    list = (await api("/experiments")).experiments;
  } catch (err) {
    showAlert(err.message);
    document.body.dataset.ready = "true";
    return;
  }
  if (!list.length) {
    sel.replaceChildren(el("option", {}, "none"));
    const empty = $("#exp-empty");
    empty.replaceChildren(el("strong", {}, "No experiment yet"),
      "Add one under experiments: in the serving config (see movierec.serving.abtest).");
    empty.hidden = false;
    document.body.dataset.ready = "true";
    return;
  }
  sel.replaceChildren(...list.map((e) => el("option", { value: e.name }, `${e.name} (${e.units} units)`)));
  const wanted = new URLSearchParams(location.search).get("name");
  if (wanted && list.some((e) => e.name === wanted)) sel.value = wanted;
  sel.disabled = false;
  sel.addEventListener("change", () => {
    history.replaceState(null, "", `?name=${encodeURIComponent(sel.value)}`);
    document.body.dataset.ready = "false";
    load(sel.value);
  });
  load(sel.value);
}

main();
