// The meeting page (/m/{meeting_id}): transcript (searchable), downloads, notes (the organizer edits them and
// posts the action items to the meeting's chat), attendance and speaking time, and the meetings this browser
// keeps. Every call carries the meeting's record token in the Authorization header; none is ever in a URL.
import { el } from "/static/dom.js";
import { errorText, formatDateTime, initPage, language, onLanguageChange, t } from "/static/i18n.js";
import { icon } from "/static/icons.js";
import { forgetRecordToken, keepRecordToken, recordPath, recordToken, recordTokens } from "/static/records-store.js";

// Every string the page shows comes from the message catalogue (web/i18n/*.js, keys "record.*").
const TEXT = {
  title: (room) => t("record.title", { room }),
  when: (date, duration, live) => t(live ? "record.whenLive" : "record.when", { date, duration }),
  download: (format) => t("record.download", { format }),
  refused: (err) => t("record.refused", { message: errorText(err) }),
  published: (count, when) => t("record.published", { count, when }),
  matches: (shown, total) => (shown === total ? t("record.segments", { count: total })
    : t("record.segmentsShown", { shown, count: total })),
  mineLine: (date, duration, people) => `${date} · ${duration} · ${people}`,
};
const FORMATS = [["vtt", "VTT"], ["srt", "SRT"], ["txt", "TXT"], ["md", "Markdown"], ["json", "JSON"]];

const $ = (id) => document.getElementById(id);
const meetingId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

async function api(path, token, { method = "GET", body, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  return raw ? response : response.json();
}

function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.hidden = true), 4000);
}

const dateTime = (seconds) => formatDateTime(seconds);
const wallTime = (iso) => new Date(iso).toLocaleTimeString(language(), { hour: "2-digit", minute: "2-digit", second: "2-digit" });

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? t("duration.hm", { h, m }) : m ? t("duration.ms", { m, s: s % 60 }) : t("duration.s", { s });
}

function offset(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n) => String(n).padStart(2, "0");
  return `${two(Math.floor(s / 3600))}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

/** The `#token=…` of a link made for someone (the fragment is never sent): kept, then wiped from the bar. */
function takeFragmentToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (!fragment.has("token")) return;
  keepRecordToken(meetingId, fragment.get("token"));
  history.replaceState(null, "", location.pathname);
}

function showMissing(title, text) {
  $("record-missing").hidden = false;
  $("missing-title").textContent = title;
  $("missing-text").textContent = text;
}

// -- header and downloads --------------------------------------------------------------------------------------

function renderHeader(meeting) {
  $("record-meeting").hidden = false;
  $("meeting-title").textContent = TEXT.title(meeting.room);
  $("meeting-when").textContent = TEXT.when(dateTime(meeting.started_at), duration(meeting.duration_seconds),
    meeting.live);
  document.title = `${TEXT.title(meeting.room)} — Convene`;
}

function renderDownloads(meeting, token) {
  const box = $("downloads");
  box.replaceChildren();
  for (const [fmt, label] of FORMATS) {
    const button = el("button", { class: "btn btn--small", type: "button", "data-format": fmt },
      icon("download"), ` ${label}`);
    button.setAttribute("aria-label", TEXT.download(label));
    button.onclick = () => download(meeting, token, fmt).catch(() => toast(t("record.downloadFailed")));
    box.append(button);
  }
}

/** Fetched with the header, saved from a blob: the token never goes into a link the browser could log. */
async function download(meeting, token, fmt) {
  const response = await api(`/v1/meetings/${encodeURIComponent(meeting.meeting_id)}/transcript?format=${fmt}`,
    token, { raw: true });
  const url = URL.createObjectURL(await response.blob());
  const day = new Date(meeting.started_at * 1000).toISOString().slice(0, 10);
  const link = el("a", { href: url, download: `${meeting.room}-${day}.${fmt}` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// -- attendance ------------------------------------------------------------------------------------------------

function renderAttendance(meeting) {
  $("attendance-title").textContent = t("record.attendance");
  const table = $("attendance");
  const rows = (meeting.speaking?.length ? meeting.speaking : meeting.attendees.map((name) => ({ name, seconds: 0 })))
    .map((person) => el("tr", {}, el("td", { textContent: person.name }),
      el("td", { class: "num", textContent: duration(person.seconds) })));
  table.replaceChildren(el("thead", {}, el("tr", {}, el("th", { textContent: t("record.person") }),
    el("th", { textContent: t("record.spoke") }))), el("tbody", {}, ...rows));
}

// -- transcript ------------------------------------------------------------------------------------------------

function renderTranscript(segments) {
  $("transcript-title").textContent = t("record.transcript");
  const search = $("transcript-search");
  search.placeholder = t("record.search");
  search.setAttribute("aria-label", t("record.search"));
  const list = $("transcript");
  const items = segments.map((segment) => {
    const text = el("span", { class: "segment__text", textContent: segment.text });
    const item = el("li", { class: "segment" },
      el("span", { class: "segment__time", textContent: offset(segment.start), title: wallTime(segment.wall_start) }),
      el("div", {}, el("span", { class: "segment__speaker", textContent: segment.name }), text));
    return { item, text, haystack: `${segment.name} ${segment.text}`.toLowerCase(), segment };
  });
  list.replaceChildren(...items.map((i) => i.item));
  const count = () => {
    const shown = items.filter((i) => !i.item.hidden).length;
    $("transcript-count").textContent = items.length ? TEXT.matches(shown, items.length) : t("record.noTranscript");
  };
  search.oninput = () => {
    const query = search.value.trim().toLowerCase();
    for (const entry of items) {
      entry.item.hidden = Boolean(query) && !entry.haystack.includes(query);
      highlight(entry.text, entry.segment.text, query);
    }
    count();
  };
  count();
}

/** Marks where the query occurs (as text nodes: what people said never becomes markup). */
function highlight(node, text, query) {
  if (!query) {
    node.textContent = text;
    return;
  }
  const parts = [];
  const lower = text.toLowerCase();
  let at = 0;
  for (let hit = lower.indexOf(query); hit !== -1; hit = lower.indexOf(query, at)) {
    parts.push(text.slice(at, hit), el("mark", { textContent: text.slice(hit, hit + query.length) }));
    at = hit + query.length;
  }
  parts.push(text.slice(at));
  node.replaceChildren(...parts);
}

// -- notes -----------------------------------------------------------------------------------------------------

function listOf(lines) {
  return lines.length ? el("ul", { class: "notes-list" }, ...lines.map((line) => el("li", { textContent: line })))
    : el("p", { class: "record__note", textContent: t("record.nothing") });
}

function itemLine(item) {
  const due = item.due ? ` ${t("record.dueOn", { date: item.due })}` : "";
  return `${item.owner || t("record.unassigned")}: ${item.task}${due}`;
}

function renderNotesReadOnly(notes) {
  $("notes").replaceChildren(
    el("h3", { textContent: t("record.summary") }), listOf(notes.summary),
    el("h3", { textContent: t("record.decisions") }), listOf(notes.decisions),
    el("h3", { textContent: t("record.actionItems") }), listOf(notes.action_items.map(itemLine)),
  );
}

function itemRow(item, owners) {
  const row = el("div", { class: "item-row" },
    el("input", { class: "item__task", value: item.task || "", placeholder: t("record.task"), maxLength: 500,
      "aria-label": t("record.task") }),
    el("input", { class: "item__owner", value: item.owner || "", placeholder: t("record.owner"), maxLength: 128,
      "aria-label": t("record.owner"), list: owners.id }),
    el("input", { class: "item__due", type: "date", value: item.due || "", "aria-label": t("record.due") }),
    el("button", { class: "btn btn--small", type: "button", textContent: t("record.remove") }));
  row.querySelector("button").onclick = () => row.remove();
  return row;
}

function renderNotesEditor(notes, attendees, onSave, onPublish) {
  const owners = el("datalist", { id: "owner-names" }, ...attendees.map((name) => el("option", { value: name })));
  const summary = el("textarea", { id: "edit-summary", value: notes.summary.join("\n"), title: t("record.linesHint") });
  const decisions = el("textarea", { id: "edit-decisions", value: notes.decisions.join("\n"), title: t("record.linesHint") });
  const items = el("div", { id: "edit-items", class: "notes-edit" },
    ...notes.action_items.map((item) => itemRow(item, owners)));
  const add = el("button", { class: "btn btn--small", type: "button", textContent: t("record.addItem") });
  add.onclick = () => items.append(itemRow({}, owners));
  $("notes").replaceChildren(owners,
    el("label", { class: "notes-edit" }, el("h3", { textContent: t("record.summary") }), summary),
    el("label", { class: "notes-edit" }, el("h3", { textContent: t("record.decisions") }), decisions),
    el("h3", { textContent: t("record.actionItems") }), items, add);
  const lines = (area) => area.value.split("\n").map((l) => l.trim()).filter(Boolean);
  const edit = () => ({
    summary: lines(summary),
    decisions: lines(decisions),
    action_items: [...items.querySelectorAll(".item-row")].map((row) => ({
      task: row.querySelector(".item__task").value.trim(),
      owner: row.querySelector(".item__owner").value.trim() || null,
      due: row.querySelector(".item__due").value || null,
    })).filter((item) => item.task),
  });
  const save = el("button", { id: "notes-save", class: "btn", type: "button", textContent: t("record.save") });
  const publish = el("button", { id: "notes-publish", class: "btn btn--primary", type: "button",
    textContent: t("record.publish") });
  save.onclick = () => onSave(edit());
  publish.onclick = () => onPublish(edit());
  $("notes-actions").replaceChildren(save, publish);
  $("notes-actions").hidden = false;
  return edit;
}

/** What the notes card shows, kept so that a language switch can draw it again (edits included). */
let shownNotes = null; // {meeting, token, notes, edit: (() => edit) | null}

async function loadNotes(meeting, token) {
  $("notes-error").textContent = "";
  let notes = null;
  try {
    notes = await api(`/v1/meetings/${encodeURIComponent(meetingId)}/notes`, token);
  } catch (err) {
    if (err.status !== 404) throw err;
  }
  shownNotes = { meeting, token, notes, edit: null };
  renderNotes();
}

function renderNotes() {
  const { meeting, token, notes } = shownNotes;
  $("notes-title").textContent = t("record.notes");
  $("notes-actions").hidden = true;
  shownNotes.edit = null;
  if (!notes) {
    $("notes").replaceChildren(el("p", { class: "record__note", textContent: t("record.noNotes") }));
    return;
  }
  const state = notes.state;
  if (state.published_at) {
    $("notes-state").textContent = TEXT.published(state.tasks_posted, dateTime(state.published_at));
  } else if (meeting.live) {
    $("notes-state").textContent = t("record.live");
  } else {
    $("notes-state").textContent = meeting.may_edit ? t("record.notPublished") : t("record.notPublishedReader");
  }
  if (!meeting.may_edit || state.published_at || meeting.live) {
    renderNotesReadOnly(notes);
    return;
  }
  const path = `/v1/meetings/${encodeURIComponent(meetingId)}/notes`;
  const failed = (err) => ($("notes-error").textContent = TEXT.refused(err));
  shownNotes.edit = renderNotesEditor(notes, meeting.attendees, async (edit) => {
    try {
      await api(path, token, { method: "PUT", body: edit });
      toast(t("record.saved"));
    } catch (err) {
      failed(err);
    }
  }, async (edit) => {
    try {
      await api(path, token, { method: "PUT", body: edit });
      await api(`${path}/publish`, token, { method: "POST" });
      await loadNotes(meeting, token);
    } catch (err) {
      failed(err);
    }
  });
}

// -- my meetings -----------------------------------------------------------------------------------------------

async function renderMine() {
  $("mine-title").textContent = t("record.mine");
  const list = $("my-meetings");
  const found = [];
  await Promise.all(recordTokens().map(async ([id, token]) => {
    try {
      const { meetings } = await api("/v1/meetings", token);
      found.push(...meetings);
    } catch (err) {
      if (err.status === 401 || err.status === 404) forgetRecordToken(id); // expired, or the server forgot it
    }
  }));
  found.sort((a, b) => b.started_at - a.started_at);
  if (!found.length) {
    list.replaceChildren(el("li", { class: "meta", textContent: t("record.mineEmpty") }));
    return;
  }
  list.replaceChildren(...found.map((m) => el("li", { class: m.meeting_id === meetingId ? "current" : "" },
    el("a", { href: recordPath(m.meeting_id), textContent: m.room }), " ",
    el("span", { class: "meta", textContent: TEXT.mineLine(dateTime(m.started_at), duration(m.duration_seconds),
      m.attendees.length ? m.attendees.join(", ") : t("record.nobody")) }))));
}

// -- the page --------------------------------------------------------------------------------------------------

async function main() {
  initPage();
  takeFragmentToken();
  const mine = renderMine();
  const token = recordToken(meetingId);
  if (!token) {
    const missing = () => showMissing(t("record.noAccessTitle"), t("record.noAccess"));
    missing();
    onLanguageChange(() => {
      missing();
      renderMine();
    });
    await mine;
    return;
  }
  let meeting;
  try {
    meeting = await api(`/v1/meetings/${encodeURIComponent(meetingId)}`, token);
  } catch (err) {
    if (err.status === 401) forgetRecordToken(meetingId);
    showMissing(t("record.noAccessTitle"), TEXT.refused(err));
    await mine;
    return;
  }
  renderHeader(meeting);
  renderDownloads(meeting, token);
  $("record-body").hidden = false;
  renderAttendance(meeting);
  let segments = [];
  if (meeting.has_transcript) {
    segments = (await api(`/v1/meetings/${encodeURIComponent(meetingId)}/transcript?format=json`, token)).segments;
  }
  renderTranscript(segments);
  await loadNotes(meeting, token);
  await mine;
  // A language switch draws the page again in the new language; the search and unsaved edits stay.
  onLanguageChange(() => {
    renderHeader(meeting);
    renderDownloads(meeting, token);
    renderAttendance(meeting);
    const query = $("transcript-search").value;
    renderTranscript(segments);
    if (query) $("transcript-search").dispatchEvent(new Event("input"));
    if (shownNotes.edit) shownNotes.notes = { ...shownNotes.notes, ...shownNotes.edit() };
    renderNotes();
    renderMine();
  });
  document.body.dataset.ready = "true"; // for tests: everything above is on the page
}

main();
