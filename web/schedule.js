// Scheduled meetings on the home page: "Upcoming" (the next 7 days of what the person organises or is invited
// to, times in the reader's language and zone, a Join button from 10 minutes before the start to the end, the
// .ics to add it to a calendar, Cancel for the organiser) and the small "Schedule" form. The server sends each
// invitee a chat message; the join link carries no token (signed-in people join as themselves).
import { el } from "/static/dom.js";
import { errorText, formatDateTime, formatTime, t } from "/static/i18n.js";
import { call, holds } from "/static/session.js";

const $ = (id) => document.getElementById(id);
const JOIN_EARLY_MS = 10 * 60 * 1000;
const WEEK_MS = 7 * 86400 * 1000;
const REDRAW_MS = 30 * 1000; // the Join button appears while the page stays open
const DURATIONS = [15, 30, 45, 60, 90, 120];
const LOGIN = /^[\w][\w.@-]{0,127}$/;

let planned = [];

const joinable = (plan, now = Date.now()) =>
  now >= Date.parse(plan.starts_at) - JOIN_EARLY_MS && now < Date.parse(plan.ends_at);

function upcomingItem(person, plan, enter) {
  const start = new Date(plan.starts_at);
  const when = el("span", { className: "home__when",
    textContent: t("schedule.range", { start: formatDateTime(start), end: formatTime(new Date(plan.ends_at)) }) });
  const parts = [el("span", { className: "home__title", textContent: plan.title }), when];
  if (plan.organizer !== person.login) {
    parts.push(el("span", { className: "home__secondary", textContent: t("schedule.by", { name: plan.organizer }) }));
  }
  if (joinable(plan)) {
    const join = el("button", { className: "btn btn--primary btn--small", type: "button", textContent: t("schedule.join") });
    join.dataset.join = plan.room;
    join.onclick = () => enter(plan.room);
    parts.push(join);
  }
  parts.push(el("a", { href: plan.ics_url, download: `${plan.id}.ics`, textContent: t("schedule.calendar"),
    className: "home__secondary" }));
  if (plan.organizer === person.login) parts.push(cancelButton(person, plan, enter));
  const li = el("li", { className: "home__item" }, ...parts);
  li.dataset.scheduled = plan.id;
  return li;
}

function cancelButton(person, plan, enter) {
  const button = el("button", { className: "btn btn--small", type: "button", textContent: t("schedule.cancel") });
  button.onclick = async () => {
    if (!confirm(t("schedule.confirmCancel", { title: plan.title }))) return;
    try {
      await call(person, "DELETE", `/v1/meetings/scheduled/${encodeURIComponent(plan.id)}`);
      await loadUpcoming(person, enter);
    } catch (err) {
      $("schedule-error").textContent = errorText(err);
    }
  };
  return button;
}

function drawUpcoming(person, enter) {
  const items = planned.filter((plan) => Date.parse(plan.ends_at) > Date.now()).map((p) => upcomingItem(person, p, enter));
  $("upcoming-meetings").replaceChildren(...items);
  $("upcoming-empty").hidden = items.length > 0;
}

/** Asks the server for the next 7 days (meetings going on now included) and draws them. */
export async function loadUpcoming(person, enter) {
  const from = new Date().toISOString();
  const to = new Date(Date.now() + WEEK_MS).toISOString();
  const query = new URLSearchParams({ from, to });
  planned = (await call(person, "GET", `/v1/meetings/scheduled?${query}`)).meetings;
  drawUpcoming(person, enter);
}

function inviteesOf(text) {
  return [...new Set(text.split(/[\s,;]+/).map((s) => s.trim().replace(/^@/, "")).filter(Boolean))];
}

function fillDurations() {
  const chosen = Number($("schedule-duration").value) || 30; // kept when the language changes
  $("schedule-duration").replaceChildren(...DURATIONS.map((minutes) =>
    el("option", { value: String(minutes), textContent: t("schedule.minutes", { count: minutes }),
      selected: minutes === chosen })));
}

async function submitPlan(person, enter) {
  $("schedule-error").textContent = "";
  $("schedule-status").textContent = "";
  const title = $("schedule-title").value.trim();
  const when = $("schedule-when").value; // local wall time, e.g. 2026-12-02T09:00
  const invitees = inviteesOf($("schedule-invitees").value);
  if (!title) return void ($("schedule-error").textContent = t("schedule.noTitle"));
  if (!when || Number.isNaN(new Date(when).getTime())) return void ($("schedule-error").textContent = t("schedule.noWhen"));
  const bad = invitees.filter((login) => !LOGIN.test(login));
  if (bad.length) return void ($("schedule-error").textContent = t("schedule.unknownInvitees", { logins: bad.join(", ") }));
  $("schedule-submit").disabled = true;
  try {
    const plan = await call(person, "POST", "/v1/meetings/scheduled", {
      title, starts_at: new Date(when).toISOString(), duration_minutes: Number($("schedule-duration").value), invitees,
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || null,
    });
    $("schedule-form").reset();
    $("schedule-status").textContent = t("schedule.scheduled", { title: plan.title, when: formatDateTime(new Date(plan.starts_at)) });
    await loadUpcoming(person, enter);
  } catch (err) {
    $("schedule-error").textContent = err.code === "unknown_invitees"
      ? t("schedule.unknownInvitees", { logins: (err.details?.logins || []).join(", ") })
      : errorText(err);
  } finally {
    $("schedule-submit").disabled = false;
  }
}

let redraw = null;

/** The Upcoming list and, for people who may start meetings, the Schedule form. `enter(room)` joins a room. */
export async function showSchedule(person, enter) {
  $("schedule").hidden = !holds(person, "start_meeting");
  fillDurations();
  $("schedule-form").onsubmit = (event) => {
    event.preventDefault();
    submitPlan(person, enter);
  };
  clearInterval(redraw);
  redraw = setInterval(() => drawUpcoming(person, enter), REDRAW_MS);
  await loadUpcoming(person, enter);
}

/** Draws again (the language changed): no new request. */
export function redrawUpcoming(person, enter) {
  fillDurations();
  drawUpcoming(person, enter);
}
