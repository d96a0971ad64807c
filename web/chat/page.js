// The /chat page: team channels, direct chats and groups with unread counts; one panel at a time.
import { ChatClient } from "/static/chat/client.js";
import { mountChatPanel } from "/static/chat/panel.js";
import { errorText, formatDate, initPage, onLanguageChange, t as tr } from "/static/i18n.js";

initPage();

// The link carries the token in its fragment (`/chat#token=…`, never sent to the server; a legacy
// `?token=…` is read once too). It is kept for this tab and wiped from the address bar at once.
const params = new URLSearchParams(location.search);
const fragment = new URLSearchParams(location.hash.slice(1));
const fromLink = fragment.get("token") || params.get("token");
if (fromLink) sessionStorage.setItem("convene-chat-token", fromLink);
if (fragment.has("token") || params.has("token")) {
  params.delete("token");
  history.replaceState(null, "", location.pathname + (params.toString() ? `?${params}` : ""));
}
const token = sessionStorage.getItem("convene-chat-token");
const $ = (id) => document.getElementById(id);

// Without a token from a link or the sign-in page, a session cookie (from /signin, in another tab) may do.
async function cookieSession() {
  try {
    const resp = await fetch("/v1/me", { credentials: "same-origin" });
    const me = resp.ok ? await resp.json() : null;
    return me?.csrf ? me : null;
  } catch {
    return null;
  }
}
const session = token ? null : await cookieSession();

if (!token && !session) {
  // Built from nodes: the sentence is translated, the command stays as it is typed.
  const [before, after] = tr("chat.openLink", { command: "\u0000" }).split("\u0000");
  const hint = Object.assign(document.createElement("p"), { className: "cv-empty" });
  hint.append(before, Object.assign(document.createElement("code"), { textContent: "convene users token LOGIN" }), after ?? "");
  const signin = Object.assign(document.createElement("a"), { href: "/signin", textContent: tr("signin.heading") });
  $("main").replaceChildren(hint, Object.assign(document.createElement("p"), { className: "cv-empty" }));
  $("main").lastChild.append(signin);
} else {
  const client = new ChatClient(token, "", session?.csrf ?? null);
  const state = { me: null, channels: new Map(), current: null, panel: null };

  // What the caller may not do is not offered (the server refuses it anyway): body classes the stylesheet reads,
  // from GET /v1/me and, when an admin changes the table, from the socket's `permissions` frame.
  const GATED = ["create_group", "create_team_channel", "upload_files"];
  function showPermitted(permissions) {
    if (!Array.isArray(permissions)) return;  // a meeting token's answer lists none: nothing is hidden
    for (const p of GATED) document.body.classList.toggle(`cv-lacks-${p}`, !permissions.includes(p));
  }

  const label = (c) => c.kind === "direct" ? c.name.replace(/^dm:/, "").split(":").filter((x) => x !== state.me.login).join(", ") || c.name : `#${c.name}`;

  function render() {
    for (const id of ["team", "direct", "other"]) $(id).replaceChildren();
    for (const c of [...state.channels.values()].sort((a, b) => label(a).localeCompare(label(b)))) {
      const li = document.createElement("li");
      li.className = "cv-channel" + (state.current === c.id ? " cv-current" : "");
      li.dataset.id = c.id;
      li.dataset.name = c.name;
      const a = document.createElement("a");
      a.href = `#${c.id}`;
      a.textContent = label(c);
      a.onclick = (e) => { e.preventDefault(); open(c.id); };
      li.append(a);
      if (c.unread && state.current !== c.id) {
        const badge = document.createElement("span");
        badge.className = "cv-unread";
        badge.textContent = String(c.unread);
        li.append(badge);
      }
      $(c.kind === "team" ? "team" : c.kind === "direct" ? "direct" : "other").append(li);
    }
  }

  async function refresh() {
    const res = await client.api("GET", "/v1/channels");
    state.channels = new Map(res.channels.map((c) => [c.id, c]));
    render();
  }

  async function refreshTasks() {
    const res = await client.api("GET", "/v1/tasks?assignee=me");
    $("tasks").replaceChildren(...res.tasks.map((t) => {
      const li = document.createElement("li");
      li.textContent = t.task.title + (t.task.due ? ` ${tr("chat.dueOn", { date: formatDate(t.task.due) })}` : "");
      li.onclick = () => open(t.channel);
      return li;
    }));
  }

  function open(id) {
    state.panel?.destroy();
    state.current = id;
    const c = state.channels.get(id);
    if (c) c.unread = 0;
    render();
    state.panel = mountChatPanel($("main"), { channel: id, token, client });
    location.hash = id;
  }

  client.addEventListener("event", (e) => {
    const ev = e.detail;
    const c = state.channels.get(ev.channel);
    if (ev.type === "message" && c && ev.channel !== state.current && ev.message.author !== state.me.login) {
      c.unread = (c.unread || 0) + 1;
      render();
    }
    if (ev.type === "permissions" && state.role) showPermitted(ev.roles?.[state.role]);
    if (ev.type === "members" || (ev.type === "channel" && !c)) refresh();
    if (ev.type === "task" || (ev.type === "message" && ev.message.task)) refreshTasks();
  });
  client.addEventListener("sync", () => refresh());

  $("new-channel").onsubmit = async (e) => {
    e.preventDefault();
    try {
      const c = await client.api("POST", "/v1/channels", { name: e.target.name.value, kind: "team" });
      e.target.reset();
      await refresh();
      open(c.id);
    } catch (err) { alert(errorText(err)); }
  };
  $("new-direct").onsubmit = async (e) => {
    e.preventDefault();
    try {
      const c = await client.api("POST", "/v1/channels", { kind: "direct", members: [e.target.login.value] });
      e.target.reset();
      await refresh();
      open(c.id);
    } catch (err) { alert(errorText(err)); }
  };
  $("new-group").onsubmit = async (e) => {
    e.preventDefault();
    const members = e.target.members.value.split(/[,\s]+/).filter(Boolean);
    try {
      const c = await client.api("POST", "/v1/channels", { kind: "group", members });
      e.target.reset();
      await refresh();
      open(c.id);
    } catch (err) { alert(errorText(err)); }
  };
  onLanguageChange(() => refreshTasks().catch(() => {}));

  (async () => {
    const me = await client.api("GET", "/v1/me");
    state.me = me.user;
    state.role = me.role;
    showPermitted(me.permissions);
    $("me").textContent = state.me.name || state.me.login;
    await refresh();
    await refreshTasks();
    client.connect();
    const wanted = location.hash.slice(1);
    if (wanted && state.channels.has(wanted)) open(wanted);
    document.body.dataset.ready = "true";
  })().catch((err) => { $("main").textContent = errorText(err); });
}
