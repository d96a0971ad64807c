// The signed-in person's home (at `/`): start or join a meeting as themselves, their meetings (upcoming ones and
// the Schedule form: schedule.js), channels and direct messages with unread counts (links into /chat), and their
// open tasks. Everything comes over REST with the session cookie; writes (starting or scheduling a meeting) send
// the CSRF token from /v1/me. The meeting token the
// server answers is kept for the tab (sessionStorage), so the meeting's address carries none.
import { randomRoomName, rememberToken, ROOM_NAME } from "/static/api.js";
import { el } from "/static/dom.js";
import { errorText, formatDate, formatDateTime, onLanguageChange, t } from "/static/i18n.js";
import { recordPath, recordToken } from "/static/records-store.js";
import { redrawUpcoming, showSchedule } from "/static/schedule.js";
import { call, holds, isAdmin, joinAsMember, signOut } from "/static/session.js";

const $ = (id) => document.getElementById(id);

function unreadBadge(count) {
  if (!count) return "";
  return el("span", { className: "home__badge", textContent: String(count),
    title: t("home.unread", { count }) });
}

/** Fills a list, or shows its "nothing here" line. */
function fill(listId, emptyId, items) {
  $(listId).replaceChildren(...items);
  $(emptyId).hidden = items.length > 0;
}

const directLabel = (channel, me) =>
  channel.name.replace(/^dm:/, "").split(":").filter((login) => login && login !== me).join(", ") || channel.name;

function channelItem(channel, label) {
  const link = el("a", { href: `/chat#${encodeURIComponent(channel.id)}`, textContent: label });
  const li = el("li", { className: "home__item" }, link, unreadBadge(channel.unread));
  li.dataset.channel = channel.id;
  li.dataset.unread = String(channel.unread || 0);
  return li;
}

/** A meeting the person took part in: its channel (kind "meeting", named by the meeting id, the room its topic). */
function meetingItem(channel) {
  const room = channel.topic;
  const open = el("a", { href: `/r/${encodeURIComponent(room)}`, textContent: room, className: "home__room" });
  const when = el("span", { className: "home__when", textContent: formatDateTime(channel.created_at) });
  const chat = el("a", { href: `/chat#${encodeURIComponent(channel.id)}`, textContent: t("home.meetingChat"),
    className: "home__secondary" });
  // The transcript and notes, where this browser holds the meeting's record token (moderators get one).
  const notes = recordToken(channel.name)
    ? el("a", { href: recordPath(channel.name), textContent: t("home.meetingNotes"), className: "home__secondary" })
    : "";
  const li = el("li", { className: "home__item" }, open, when, chat, notes, unreadBadge(channel.unread));
  li.dataset.meeting = channel.name;
  return li;
}

function taskItem(message) {
  const task = message.task || {};
  const title = el("a", { href: `/chat#${encodeURIComponent(message.channel)}`, textContent: task.title || "" });
  const due = task.due ? el("span", { className: "home__when", textContent: t("home.due", { date: formatDate(task.due) }) }) : "";
  const li = el("li", { className: "home__item" }, title, due);
  li.dataset.task = message.id;
  return li;
}

async function renderLists(person) {
  const [{ channels }, { tasks }] = await Promise.all([
    call(person, "GET", "/v1/channels"),
    call(person, "GET", "/v1/tasks"),
  ]);
  const byName = (a, b) => a.name.localeCompare(b.name);
  const newest = (a, b) => b.created_at - a.created_at;
  const meetings = channels.filter((c) => c.kind === "meeting" && c.topic && ROOM_NAME.test(c.topic)).sort(newest);
  fill("recent-meetings", "recent-empty", meetings.slice(0, 10).map(meetingItem));
  fill("home-channels", "channels-empty", channels.filter((c) => c.kind === "team" || c.kind === "group").sort(byName)
    .map((c) => channelItem(c, c.kind === "team" ? `#${c.name}` : c.name)));
  fill("home-direct", "direct-empty", channels.filter((c) => c.kind === "direct")
    .map((c) => channelItem(c, directLabel(c, person.login)))
    .sort((a, b) => a.textContent.localeCompare(b.textContent)));
  fill("home-tasks", "tasks-empty", tasks.map(taskItem));
}

async function enterMeeting(person, room) {
  $("start-error").textContent = "";
  for (const button of document.querySelectorAll("#home button")) button.disabled = true;
  try {
    const { token } = await joinAsMember(person, room);
    rememberToken(room, token); // the meeting page finds it here: its address stays /r/{room}
    location.assign(`/r/${encodeURIComponent(room)}`);
  } catch (err) {
    $("start-error").textContent = errorText(err);
    for (const button of document.querySelectorAll("#home button")) button.disabled = false;
  }
}

/** Shows the home page for `person` (from currentPerson()). */
export async function showHome(person) {
  $("landing").hidden = true;
  $("home").hidden = false;
  document.title = t("home.title");
  const enter = (room) => enterMeeting(person, room);
  onLanguageChange(() => {
    document.title = t("home.title");
    renderLists(person).catch(() => {});
    redrawUpcoming(person, enter);
  });
  $("home-me").textContent = t("home.signedInAs", { name: person.name || person.login });
  $("home-admin").hidden = !isAdmin(person);
  const mayStart = holds(person, "start_meeting");
  $("start-meeting").hidden = !mayStart;
  $("start-not-permitted").hidden = mayStart;
  $("start-meeting").onclick = () => enterMeeting(person, randomRoomName());
  $("join-room").onsubmit = (event) => {
    event.preventDefault();
    const room = $("join-room-name").value.trim();
    if (!ROOM_NAME.test(room)) {
      $("start-error").textContent = t("landing.badRoom");
      return;
    }
    enterMeeting(person, room);
  };
  $("home-signout").onclick = async () => {
    await signOut();
    location.assign("/signin");
  };
  try {
    await Promise.all([renderLists(person), showSchedule(person, enter)]);
  } catch (err) {
    $("home-error").textContent = errorText(err);
  }
  document.body.dataset.ready = "home";
}
