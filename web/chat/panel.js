// The chat panel: one channel's timeline with send, edit, recall, threads, tasks, files and search.
// Used by the meeting page (mountChatPanel(container, {room, token})) and by /chat ({channel, token, client}).
import { ChatClient } from "/static/chat/client.js";
import { renderText } from "/static/chat/render.js";
import { errorText, formatDateTime, formatTime, onLanguageChange, t, translatePage } from "/static/i18n.js";
import { icon } from "/static/icons.js";
import { Watermark, effectiveMode } from "/static/watermark.js";

// Message text becomes DOM nodes in render.js (never HTML); everything else here is set as textContent.
// Times in the reader's language (Intl.DateTimeFormat, via i18n.js).
const time = formatTime;
const dateTime = formatDateTime;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

const TEMPLATE = `
  <div class="cv-bar">
    <input class="cv-search" type="search" placeholder="Search messages" aria-label="Search messages" data-i18n-attr="placeholder:chat.search;aria-label:chat.search">
    <span class="cv-status" aria-live="polite"></span>
  </div>
  <div class="cv-results" hidden></div>
  <ol class="cv-messages" aria-label="Messages" data-i18n-attr="aria-label:chat.messages"></ol>
  <div class="cv-typing" aria-live="polite"></div>
  <div class="cv-replying" hidden><span></span> <button type="button" class="cv-cancel-reply" aria-label="Cancel reply" data-i18n-attr="aria-label:chat.cancelReply">×</button></div>
  <form class="cv-composer">
    <textarea name="content" rows="2" placeholder="Message (Markdown, @mentions)" aria-label="Message" data-i18n-attr="placeholder:chat.messagePlaceholder;aria-label:chat.message"></textarea>
    <div class="cv-tools">
      <label class="cv-attach" title="Attach files" data-i18n-attr="title:chat.attach;aria-label:chat.attach"><input type="file" name="files" multiple hidden></label>
      <button type="button" class="cv-task-toggle" aria-expanded="false" data-i18n="chat.task">Task</button>
      <label class="cv-important-toggle"><input type="checkbox" name="important"> <span data-i18n="chat.important">Important</span></label>
      <span class="cv-pending"></span>
      <button type="submit" class="cv-send" data-i18n="chat.send">Send</button>
    </div>
  </form>
  <form class="cv-task-form" hidden>
    <input name="title" placeholder="Task title" aria-label="Task title" required maxlength="500" data-i18n-attr="placeholder:chat.taskTitle;aria-label:chat.taskTitle">
    <select name="assignee" aria-label="Assignee" data-i18n-attr="aria-label:chat.assignee"><option value="" data-i18n="chat.noAssignee">No assignee</option></select>
    <input name="due" type="datetime-local" aria-label="Due" data-i18n-attr="aria-label:chat.due">
    <button type="submit" class="cv-task-create" data-i18n="chat.createTask">Create task</button>
  </form>
  <div class="cv-error" role="alert" hidden></div>`;

export function mountChatPanel(container, { room, channel, token, client } = {}) {
  if (!document.querySelector("link[data-cv-chat]")) {
    const css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = "/static/chat/chat.css";
    css.dataset.cvChat = "";
    document.head.append(css);
  }
  const ownsClient = !client;
  client = client || new ChatClient(token);
  const root = el("div", "cv-chat");
  root.innerHTML = TEMPLATE; // a constant: no user text
  translatePage(root);
  container.replaceChildren(root);
  const $ = (sel) => root.querySelector(sel);
  // Our own paperclip (an emoji would need a font the machine may lack: a missing-glyph box). Sized here, as
  // the /chat page does not load the meeting's stylesheet.
  const clip = icon("attach");
  clip.setAttribute("width", "20");
  clip.setAttribute("height", "20");
  clip.setAttribute("fill", "currentColor");
  $(".cv-attach").prepend(clip);
  $(".cv-attach").setAttribute("aria-label", t("chat.attach"));
  const list = $(".cv-messages");
  const state = { me: null, channel: null, messages: new Map(), replyTo: null, files: [], typing: new Map() };
  // The watermark in force here (docs/watermark.md): GET /v1/me gives the text and the org's setting (a meeting
  // token's: its channel's), the channel may have its own. "all" covers the panel, "important" each flagged message.
  const mark = { me: null, mode: "off", layer: null };

  function applyWatermark() {
    const mode = mark.me ? effectiveMode(state.channel, mark.me) : "off";
    root.dataset.watermark = mode;
    if (mode === mark.mode && mark.layer) return;
    mark.layer?.destroy();
    mark.layer = null;
    mark.mode = mode;
    if (mode === "off" || !mark.me.watermark_text) return;
    const page = room && !channel ? "meeting" : "chat";
    mark.layer = new Watermark({ text: mark.me.watermark_text,
      report: (what) => client.api("POST", "/v1/watermark/tamper", { page, what }) });
    if (mode === "all") mark.layer.cover(root);
    else for (const li of list.querySelectorAll("li.cv-important")) mark.layer.cover(li);
  }

  const showError = (err) => {
    const box = $(".cv-error");
    box.textContent = err?.code || err?.status ? errorText(err) : err?.message || String(err);
    box.hidden = false;
    setTimeout(() => (box.hidden = true), 5000);
  };

  function renderMessage(m) {
    const li = el("li", "cv-msg");
    li.dataset.id = m.id;
    li.dataset.author = m.author;
    if (m.deleted) {
      li.classList.add("cv-recalled");
      li.append(el("div", "cv-text cv-tombstone", t("chat.recalled")));
      return li;
    }
    const head = el("div", "cv-head");
    head.append(el("strong", "cv-author", m.author), " ", el("time", "", time(m.created_at)));
    if (m.important) {
      li.classList.add("cv-important");
      head.append(" ", el("span", "cv-important-mark", `★ ${t("chat.importantMark")}`));
    }
    if (m.edited_at) {
      const edited = el("span", "cv-edited", t("chat.edited"));
      edited.title = t("chat.edited");
      head.append(" ", edited);
    }
    li.append(head);
    if (m.content) {
      const text = el("div", "cv-text");
      text.append(renderText(m.content));
      li.append(text);
    }
    if (m.task) li.append(renderTask(m));
    if (m.actions?.length) li.append(renderButtons(m));
    for (const a of m.attachments || []) {
      const link = el("a", "cv-file");
      link.textContent = `📄 ${a.size ? t("chat.fileSize", { name: a.name, size: Math.max(1, Math.round(a.size / 1024)) }) : a.name}`;
      if (a.file_id) {
        // A signed link is asked for on click: the page never holds a URL with a credential in it.
        link.href = `/v1/files/${encodeURIComponent(a.file_id)}`;
        link.setAttribute("download", a.name);
        link.onclick = (e) => { e.preventDefault(); client.download(a.file_id, a.name).catch(showError); };
      } else {
        link.href = a.url;
        link.rel = "noopener noreferrer";
      }
      li.append(link);
    }
    const reactions = Object.entries(m.reactions || {});
    if (reactions.length) {
      const r = el("div", "cv-reactions");
      for (const [emoji, who] of reactions) {
        const b = el("button", "cv-reaction", `${emoji} ${who.length}`);
        b.type = "button";
        b.title = who.join(", ");
        b.onclick = () => react(m, emoji, !who.includes(state.me.login));
        r.append(b);
      }
      li.append(r);
    }
    const actions = el("div", "cv-actions");
    const button = (cls, label, fn) => {
      const b = el("button", cls, label);
      b.type = "button";
      b.onclick = fn;
      actions.append(b);
      return b;
    };
    button("cv-react", "👍", () => react(m, "👍", true)).setAttribute("aria-label", t("chat.react", { emoji: "👍" }));
    if (!m.thread) button("cv-reply", t("chat.reply"), () => setReply(m));
    if (m.author === state.me.login && m.type !== "task" && m.content) button("cv-edit", t("chat.edit"), () => startEdit(li, m));
    if (m.author === state.me.login) {
      button("cv-flag", t(m.important ? "chat.unmarkImportant" : "chat.markImportant"), () =>
        client.api("PATCH", `/v1/messages/${m.id}`, { important: !m.important }).then(upsert).catch(showError));
    }
    if (m.author === state.me.login || ["admin", "owner"].includes(state.me.role)) button("cv-recall", t("chat.recall"), () => recall(m));
    li.append(actions);
    if (!m.thread) li.append(el("ol", "cv-thread"));
    return li;
  }

  // An interactive message's buttons (a bot's approval request): a click goes to the server, which asks the
  // integration; its answer comes back as the message updated for everyone, or as a note for us alone.
  function renderButtons(m) {
    const box = el("div", "cv-buttons");
    for (const a of m.actions) {
      const b = el("button", `cv-button${a.style ? ` cv-button--${a.style}` : ""}`, a.text);
      b.type = "button";
      b.dataset.actionId = a.action_id;
      b.onclick = async () => {
        const all = [...box.querySelectorAll("button")];
        all.forEach((x) => (x.disabled = true));
        try {
          const out = await client.api("POST", `/v1/messages/${encodeURIComponent(m.id)}/actions/${encodeURIComponent(a.action_id)}`);
          if (out.message) upsert(out.message);
          if (out.ephemeral) showEphemeral(out.ephemeral);
        } catch (err) { showError(err); }
        finally { all.forEach((x) => (x.disabled = false)); }
      };
      box.append(b);
    }
    return box;
  }

  // What only this user sees (a slash command's answer or error, an integration's reply to a click): drawn in
  // the timeline, never stored; it is gone after a reload. The socket and the REST answer may both bring it.
  const shownEphemerals = new Set();
  function showEphemeral(e) {
    if (!e || shownEphemerals.has(e.id) || (state.channel && e.channel !== state.channel.id)) return;
    shownEphemerals.add(e.id);
    const li = el("li", `cv-msg cv-ephemeral${e.error ? " cv-ephemeral--error" : ""}`);
    li.dataset.ephemeral = e.id;
    const head = el("div", "cv-head");
    head.append(el("strong", "cv-author", e.command || t("chat.system")), " ", el("span", "cv-only-you", t("chat.onlyYou")),
      " ", el("time", "", time(e.created_at)));
    const text = el("div", "cv-text");
    text.append(renderText(e.text || ""));
    li.append(head, text);
    list.append(li);
    list.scrollTop = list.scrollHeight;
  }

  function renderTask(m) {
    const task = m.task;
    const box = el("div", `cv-task cv-task--${task.status}`);
    const label = el("label", "cv-task-label");
    const tick = el("input", "cv-task-done");
    tick.type = "checkbox";
    tick.checked = task.status === "done";
    tick.onchange = () => client.api("PATCH", `/v1/tasks/${m.id}`, { status: tick.checked ? "done" : "open" }).catch(showError);
    label.append(tick, el("span", "cv-task-title", task.title));
    box.append(label);
    const meta = [task.assignee ? `→ @${task.assignee}` : "", task.due ? t("chat.taskDue", { date: dateTime(task.due) }) : "",
      t(`chat.status.${task.status}`)];
    box.append(el("div", "cv-task-meta", meta.filter(Boolean).join(" · ")));
    for (const n of task.notes || []) box.append(el("div", "cv-task-note", `${n.author}: ${n.text}`));
    return box;
  }

  function upsert(m) {
    if (m.channel !== state.channel.id) return;
    state.messages.set(m.id, m);
    const fresh = renderMessage(m);
    if (mark.mode === "important" && m.important && !m.deleted) queueMicrotask(() => mark.layer?.cover(fresh));
    const old = list.querySelector(`li.cv-msg[data-id="${CSS.escape(m.id)}"]`);
    if (old) {
      const thread = old.querySelector(":scope > ol.cv-thread");
      const newThread = fresh.querySelector(":scope > ol.cv-thread");
      if (thread && newThread) newThread.replaceWith(thread);
      old.replaceWith(fresh);
      return;
    }
    const parent = m.thread && list.querySelector(`li.cv-msg[data-id="${CSS.escape(m.thread)}"] > ol.cv-thread`);
    if (m.thread && !parent) fresh.classList.add("cv-orphan-reply");
    (parent || list).append(fresh);
    const near = list.scrollHeight - list.scrollTop - list.clientHeight < 120;
    if (near || m.author === state.me.login) list.scrollTop = list.scrollHeight;
  }

  function markRecalled(id) {
    const m = state.messages.get(id);
    if (m) upsert({ ...m, deleted: true, content: "", attachments: [], task: null });
  }

  let readTimer = null;
  function markRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      const ords = [...state.messages.values()].map((m) => m.ord);
      if (ords.length) client.api("POST", `/v1/channels/${state.channel.id}/read`, { ord: Math.max(...ords) }).catch(() => {});
    }, 300);
  }

  function setReply(m) {
    state.replyTo = m;
    const bar = $(".cv-replying");
    bar.hidden = false;
    bar.querySelector("span").textContent = t("chat.replyingTo", { name: m.author, text: (m.content || m.task?.title || "").slice(0, 60) });
    $("textarea").focus();
  }

  function startEdit(li, m) {
    const text = li.querySelector(".cv-text");
    const box = el("textarea", "cv-edit-box");
    box.value = m.content;
    const save = el("button", "cv-save", t("chat.save"));
    save.type = "button";
    save.onclick = () => client.api("PATCH", `/v1/messages/${m.id}`, { content: box.value }).then(upsert).catch(showError);
    text.replaceWith(box);
    box.after(save);
    box.focus();
  }

  const recall = (m) => client.api("DELETE", `/v1/messages/${m.id}`).then(upsert).catch(showError);
  const react = (m, emoji, on) =>
    (on ? client.api("POST", `/v1/messages/${m.id}/reactions`, { emoji })
        : client.api("DELETE", `/v1/messages/${m.id}/reactions/${encodeURIComponent(emoji)}`)).then(upsert).catch(showError);

  const newClientId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);

  async function send(ev) {
    ev.preventDefault();
    const area = $("textarea");
    const content = area.value;
    if (!content.trim() && !state.files.length) return;
    const body = { to: state.channel.id, content, client_id: newClientId() };
    if (state.files.length) {
      body.type = "file";
      body.attachments = state.files.map((f) => ({ type: "file", file_id: f.id }));
    }
    if (state.replyTo) body.thread = state.replyTo.id;
    const important = root.querySelector("input[name=important]");
    if (important.checked) body.important = true;
    $(".cv-send").disabled = true;
    try {
      // The same client_id on a retry can never post twice.
      let sent;
      for (let attempt = 0; ; attempt++) {
        try { sent = await client.api("POST", "/v1/messages", body); break; }
        catch (err) { if (attempt >= 2 || (err.status && err.status < 500)) throw err; }
      }
      if (sent.command) showEphemeral(sent.ephemeral); // a slash command: its answers come as events
      else upsert(sent);
      area.value = "";
      important.checked = false;
      state.files = [];
      $(".cv-pending").textContent = "";
      state.replyTo = null;
      $(".cv-replying").hidden = true;
    } catch (err) { showError(err); }
    finally { $(".cv-send").disabled = false; }
  }

  async function upload(input) {
    const form = new FormData();
    for (const f of input.files) form.append("file", f, f.name);
    $(".cv-pending").textContent = t("chat.uploading");
    try {
      const res = await client.api("POST", "/v1/files", form);
      state.files.push(...res.files);
      $(".cv-pending").textContent = state.files.map((f) => f.name).join(", ");
      $(".cv-pending").dataset.ready = "true";
    } catch (err) {
      $(".cv-pending").textContent = "";
      showError(err);
    }
    input.value = "";
  }

  async function createTask(ev) {
    ev.preventDefault();
    const f = ev.target;
    const task = { title: f.title.value };
    if (f.assignee.value) task.assignee = f.assignee.value;
    if (f.due.value) task.due = new Date(f.due.value).toISOString();
    try {
      upsert(await client.api("POST", "/v1/messages", { to: state.channel.id, type: "task", task, client_id: newClientId() }));
      f.reset();
      f.hidden = true;
    } catch (err) { showError(err); }
  }

  let searchTimer = null;
  function search(q) {
    clearTimeout(searchTimer);
    const box = $(".cv-results");
    if (!q.trim()) { box.hidden = true; return; }
    searchTimer = setTimeout(async () => {
      try {
        const res = await client.api("GET", `/v1/search?q=${encodeURIComponent(q)}&channel=${encodeURIComponent(state.channel.id)}`);
        box.replaceChildren(...(res.messages.length ? res.messages.map((m) => {
          const item = el("div", "cv-result");
          item.append(el("strong", "", m.author), " ", renderText(m.content || m.task?.title || ""));
          item.onclick = () => list.querySelector(`li.cv-msg[data-id="${CSS.escape(m.id)}"]`)?.scrollIntoView({ block: "center" });
          return item;
        }) : [el("div", "cv-result cv-none", t("chat.noResults"))]));
        box.hidden = false;
      } catch (err) { showError(err); }
    }, 200);
  }

  function onEvent(e) {
    const ev = e.detail;
    if (!state.channel || ev.channel !== state.channel.id) return;
    if (ev.message) {
      upsert(ev.message);
      markRead();
    } else if (ev.type === "typing" && ev.user !== state.me.login) {
      state.typing.set(ev.user, Date.now());
      renderTyping();
    } else if (ev.type === "members") loadMembers();
    else if (ev.type === "channel" && ev.data) {
      state.channel = { ...state.channel, ...ev.data };
      applyWatermark();
    }
    else if (ev.type === "ephemeral") showEphemeral(ev.ephemeral);
    else if (ev.type === "expired") dropExpired(ev.ids || []);
  }

  // Retention deleted these messages (docs/retention.md): gone from the timeline, no tombstone.
  function dropExpired(ids) {
    for (const id of ids) {
      state.messages.delete(id);
      list.querySelector(`li.cv-msg[data-id="${CSS.escape(id)}"]`)?.remove();
    }
  }

  async function loadHistory() {
    const history = await client.api("GET", `/v1/channels/${state.channel.id}/messages?limit=200`);
    for (const m of history.messages) upsert(m);
  }

  function onSync(e) {
    for (const m of e.detail.updated) upsert(m);
    for (const d of e.detail.deleted) markRecalled(d.id);
  }

  function renderTyping() {
    const now = Date.now();
    for (const [who, at] of state.typing) if (now - at > 4000) state.typing.delete(who);
    const who = [...state.typing.keys()];
    $(".cv-typing").textContent = who.length ? t("chat.typing", { names: who.join(", "), count: who.length }) : "";
  }
  const typingTicker = setInterval(renderTyping, 1500);

  async function loadMembers() {
    const res = await client.api("GET", `/v1/channels/${state.channel.id}/members`);
    const select = root.querySelector("select[name=assignee]");
    select.replaceChildren(el("option", "", t("chat.noAssignee")), ...res.members.map((m) => {
      const o = el("option", "", m);
      o.value = m;
      return o;
    }));
    select.firstChild.value = "";
  }

  let lastTyping = 0;
  $("textarea").addEventListener("input", () => {
    if (Date.now() - lastTyping > 2500 && state.channel) {
      lastTyping = Date.now();
      client.typing(state.channel.id);
    }
  });
  $("textarea").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $(".cv-composer").requestSubmit(); }
  });
  $(".cv-composer").addEventListener("submit", send);
  $(".cv-task-form").addEventListener("submit", createTask);
  $("input[type=file]").addEventListener("change", (e) => upload(e.target));
  $(".cv-task-toggle").onclick = () => {
    const f = $(".cv-task-form");
    f.hidden = !f.hidden;
    $(".cv-task-toggle").setAttribute("aria-expanded", String(!f.hidden));
  };
  $(".cv-cancel-reply").onclick = () => { state.replyTo = null; $(".cv-replying").hidden = true; };
  $(".cv-search").addEventListener("input", (e) => search(e.target.value));
  client.addEventListener("event", onEvent);
  client.addEventListener("sync", onSync);
  const onResync = () => loadHistory().catch(showError);
  client.addEventListener("resync", onResync);
  // In a meeting the panel holds a meeting token, which reaches its channel only: no search across it.
  if (room && !channel) $(".cv-search").hidden = true;
  const STATUS = { live: "chat.live", "reconnecting…": "chat.reconnecting", "signed out: open your link again": "chat.signedOut" };
  let status = "";
  const showStatus = () => ($(".cv-status").textContent = STATUS[status] ? t(STATUS[status]) : status);
  const onStatus = (e) => { status = e.detail; showStatus(); };
  client.addEventListener("status", onStatus);
  // Another language: the panel's own text, and every message drawn again (buttons, times, tasks).
  const stopTranslating = onLanguageChange(() => {
    translatePage(root);
    showStatus();
    for (const m of [...state.messages.values()].sort((a, b) => (a.ord ?? 0) - (b.ord ?? 0))) upsert(m);
    if (state.channel) loadMembers().catch(() => {});
  });

  (async () => {
    try {
      mark.me = await client.api("GET", "/v1/me");
      state.me = mark.me.user;
      state.channel = await client.api("GET", `/v1/channels/${encodeURIComponent(channel || room)}`);
      root.dataset.channel = state.channel.id;
      applyWatermark();
      if (ownsClient) client.connect();
      await loadHistory();
      list.scrollTop = list.scrollHeight;
      markRead();
      await loadMembers();
      root.dataset.ready = "true";
    } catch (err) {
      showError(err);
    }
  })();

  return {
    destroy() {
      clearInterval(typingTicker);
      mark.layer?.destroy();
      stopTranslating();
      client.removeEventListener("event", onEvent);
      client.removeEventListener("sync", onSync);
      client.removeEventListener("resync", onResync);
      client.removeEventListener("status", onStatus);
      if (ownsClient) client.close();
      root.remove();
    },
  };
}
