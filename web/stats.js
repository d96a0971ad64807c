// The usage dashboard (/admin/stats): GET /v1/admin/stats for a range of UTC days, drawn as SVG charts (no
// library): lines for active users, minutes and participants, stacked bars for messages by client and by
// channel kind, bars for meetings and files. Every mark carries data-series, data-day and data-value, and a
// <title> for its tooltip. The page is the same for everyone; the API refuses who does not hold read_stats.
import { el } from "/static/dom.js";
import { errorText, has, initPage, onLanguageChange, t } from "/static/i18n.js";
import { call, currentPerson } from "/static/session.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const W = 560, H = 220, LEFT = 48, RIGHT = 10, TOP = 10, BOTTOM = 28;
const CLIENTS = ["web", "api", "bot", "webhook", "scheduled", "system", "other"];

const CHARTS = [
  { id: "active", title: "stats.activeUsers", kind: "line",
    series: [["active_users", "dau"], ["active_users", "wau"], ["active_users", "mau"]] },
  { id: "clients", title: "stats.messagesByClient", kind: "stack", series: CLIENTS.map((c) => ["messages_by_client", c]) },
  { id: "kinds", title: "stats.messagesByKind", kind: "stack", series: (data) =>
    Object.keys(data.metrics.messages_by_kind || {}).sort().map((k) => ["messages_by_kind", k]) },
  { id: "meetings", title: "stats.meetings", kind: "stack", series: [["meetings", ""]] },
  { id: "minutes", title: "stats.minutes", kind: "line", series: [["meeting_minutes", ""], ["caption_minutes", ""]] },
  { id: "participants", title: "stats.participants", kind: "line",
    series: [["meeting_participants", ""], ["meeting_people", ""]] },
  { id: "files", title: "stats.files", kind: "stack", series: [["files", ""]] },
  { id: "bytes", title: "stats.fileBytes", kind: "stack", series: [["file_bytes", ""]], bytes: true },
];

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children);
  return node;
}

function seriesLabel(metric, dim) {
  const key = `stats.series_${metric}${dim ? "_" + dim : ""}`;
  return has(key) ? t(key) : dim || metric;
}

function numberText(value, bytes) {
  if (!bytes) return new Intl.NumberFormat().format(Math.round(value * 100) / 100);
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i += 1; }
  return `${Math.round(value * 10) / 10} ${units[i]}`;
}

/** A round top for the y axis: 1, 2 or 5 times a power of ten, at least the largest value. */
function niceMax(max) {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= max);
}

function axes(days, top, bytes) {
  const g = svg("g");
  const plotH = H - TOP - BOTTOM;
  for (let i = 0; i <= 4; i += 1) {
    const y = TOP + plotH - (plotH * i) / 4;
    g.append(svg("line", { class: i ? "stats__grid" : "stats__axis", x1: LEFT, x2: W - RIGHT, y1: y, y2: y }));
    g.append(svg("text", { class: "stats__label", x: LEFT - 6, y: y + 4, "text-anchor": "end" },
      numberText((top * i) / 4, bytes)));
  }
  const band = (W - LEFT - RIGHT) / days.length;
  const step = Math.max(1, Math.ceil(days.length / 7));
  days.forEach((day, i) => {
    if (i % step !== 0 && i !== days.length - 1) return;
    g.append(svg("text", { class: "stats__label", x: LEFT + band * (i + 0.5), y: H - 8, "text-anchor": "middle" },
      day.slice(5)));
  });
  return g;
}

function mark(tag, attrs, s, day, value, label, bytes) {
  return svg(tag, { ...attrs, class: `stats__s${s}`, "data-series": label.key, "data-day": day, "data-value": value },
    svg("title", {}, `${label.text} · ${day}: ${numberText(value, bytes)}`));
}

function drawChart(spec, data) {
  const series = (typeof spec.series === "function" ? spec.series(data) : spec.series).map(([metric, dim]) => ({
    key: dim ? `${metric}.${dim}` : metric, text: seriesLabel(metric, dim),
    values: data.metrics[metric]?.[dim] || data.days.map(() => 0),
  }));
  const days = data.days;
  const totals = days.map((_, i) => (spec.kind === "stack"
    ? series.reduce((sum, s) => sum + s.values[i], 0) : Math.max(0, ...series.map((s) => s.values[i]))));
  const top = niceMax(Math.max(0, ...totals));
  const plotH = H - TOP - BOTTOM;
  const band = (W - LEFT - RIGHT) / days.length;
  const y = (v) => TOP + plotH - (plotH * v) / top;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": t(spec.title) }, axes(days, top, spec.bytes));
  if (spec.kind === "stack") {
    const base = days.map(() => 0);
    series.forEach((s, si) => {
      s.values.forEach((v, i) => {
        if (!v) return;
        const x = LEFT + band * i + band * 0.15;
        chart.append(mark("rect", { x, y: y(base[i] + v), width: Math.max(1, band * 0.7), height: y(base[i]) - y(base[i] + v) },
          si, days[i], v, s, spec.bytes));
        base[i] += v;
      });
    });
  } else {
    series.forEach((s, si) => {
      const points = s.values.map((v, i) => `${LEFT + band * (i + 0.5)},${y(v)}`).join(" ");
      chart.append(svg("polyline", { class: `stats__line stats__s${si}`, points, "data-series": s.key }));
      s.values.forEach((v, i) => chart.append(mark("circle", { cx: LEFT + band * (i + 0.5), cy: y(v), r: 2.5 },
        si, days[i], v, s, spec.bytes)));
    });
  }
  const sum = spec.kind === "stack" ? totals.reduce((a, b) => a + b, 0) : null;
  const legend = el("ul", { className: "stats__legend" },
    ...series.map((s, si) => el("li", { className: `stats__s${si}`, textContent: s.text })));
  const head = el("h2", { textContent: t(spec.title) });
  const card = el("section", { className: "card home__card stats__chart" }, head, legend, chart);
  if (sum !== null) head.append(" ", el("span", { className: "stats__total", textContent: t("stats.total", { total: numberText(sum, spec.bytes) }) }));
  card.dataset.chart = spec.id;
  return card;
}

const state = { data: null };

function render() {
  if (!state.data) return;
  $("stats-charts").replaceChildren(...CHARTS.map((spec) => drawChart(spec, state.data)));
}

async function load() {
  const params = new URLSearchParams({ from: $("stats-from").value, to: $("stats-to").value });
  $("stats-csv").href = `/v1/admin/stats?${params}&format=csv`;
  $("stats-error").textContent = "";
  try {
    state.data = await call(null, "GET", `/v1/admin/stats?${params}`);
  } catch (err) {
    $("stats-error").textContent = errorText(err);
    $("stats-charts").replaceChildren();
    document.body.dataset.ready = "stats";
    return;
  }
  render();
  document.body.dataset.ready = "stats";
}

function lastDays(count) {
  const to = new Date();
  const from = new Date(to.getTime() - (count - 1) * 86400000);
  $("stats-from").value = from.toISOString().slice(0, 10);
  $("stats-to").value = to.toISOString().slice(0, 10);
  return load();
}

async function main() {
  initPage();
  const person = await currentPerson();
  if (!person) {
    $("stats-gate").replaceChildren(t("admin.signInFirst"), " ", el("a", { href: "/signin", textContent: t("signin.heading") }));
    return;
  }
  $("stats-body").hidden = false;
  for (const button of document.querySelectorAll("[data-days]")) button.onclick = () => lastDays(Number(button.dataset.days));
  $("stats-from").onchange = load;
  $("stats-to").onchange = load;
  onLanguageChange(render);
  const query = new URLSearchParams(location.search);
  if (query.get("from")) {
    $("stats-from").value = query.get("from");
    $("stats-to").value = query.get("to") || new Date().toISOString().slice(0, 10);
    await load();
  } else {
    await lastDays(30);
  }
}

main();
