// The meeting page: pre-join, then the call, then the end screen.
import { readTokenClaims, takeToken } from "/static/api.js";
import { Call } from "/static/call.js";
import { Captions } from "/static/captions.js";
import { mountChat } from "/static/chat-mount.js";
import { Controls } from "/static/controls.js";
import { installDebugHook } from "/static/debug-hook.js";
import { DevicePicker, LevelMeter, switchCallDevice } from "/static/devices.js";
import { Grid } from "/static/grid.js";
import { errorText, initPage, onLanguageChange, reasonText, t } from "/static/i18n.js";
import en from "/static/i18n/en.js";
import { deviceOf } from "/static/local-media.js";
import { PeoplePanel } from "/static/people-panel.js";
import { runPrejoin } from "/static/prejoin.js";
import { memberToken } from "/static/session.js";
import { keepRecordToken, recordPath, recordToken } from "/static/records-store.js";
import { SidePanel } from "/static/side-panel.js";
import { Watermark } from "/static/watermark.js";


const $ = (id) => document.getElementById(id);
const room = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
let call = null;
let meetingId = null;

/** The meeting page's pass (a record token), asked for while our meeting token still works: after the end it
 * answers `meeting_ended` everywhere. Moderators get one; attendees only where the organisation allows, and they
 * get theirs with `room_ended` instead (no refused request in their console). */
async function fetchRecordToken(token) {
  try {
    const response = await fetch(`/v1/rooms/${encodeURIComponent(room)}/record-token`, {
      method: "POST", headers: { Authorization: `Bearer ${token}` },
    });
    if (!response.ok) return;
    const body = await response.json();
    keepRecordToken(body.meeting_id, body.token);
  } catch {
    // No page link then; the meeting itself goes on.
  }
}

/** The end screen's link to the meeting page, when this browser holds the meeting's record token. */
function showRecordLink() {
  let link = $("open-record");
  if (!link) {
    link = document.createElement("a");
    link.id = "open-record";
    link.className = "btn btn--primary";
    link.dataset.i18n = "record.open";
    link.textContent = t("record.open");
    $("ended").querySelector(".ended__actions").prepend(link);
  }
  link.hidden = !(meetingId && recordToken(meetingId));
  if (!link.hidden) link.href = recordPath(meetingId);
}

function notify(text) {
  const toast = $("toast");
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => (toast.hidden = true), 4000);
}

// End screens after which the same token can bring you back in (not a removal, not the end of the room).
const REJOINABLE = ["ended.left", "ended.disconnected", "ended.couldNotReconnect", "ended.replaced"];
const isRejoinable = (title) => REJOINABLE.some((key) => title === t(key) || title === en[key]);
// The call names end screens in English (web/call.js, web/reconnector.js): shown in the reader's language.
const ENDED_KEYS = new Map(Object.entries(en).filter(([key]) => key.startsWith("ended.")).map(([key, text]) => [text, key]));
const localTitle = (title) => (ENDED_KEYS.has(title) ? t(ENDED_KEYS.get(title)) : title);

/** "Reconnecting…" in the top bar while the call gets back in by itself (made here: the page's HTML is
 * the same for every state, and CSP forbids inline style, so it reuses the bar's pill). */
function showReconnecting(on, why) {
  let pill = $("reconnecting");
  if (!pill) {
    pill = Object.assign(document.createElement("span"), { id: "reconnecting", className: "pill", hidden: true });
    pill.setAttribute("role", "status");
    pill.setAttribute("aria-live", "assertive");
    $("participant-count").before(pill);
  }
  pill.hidden = !on;
  pill.textContent = on ? t("call.reconnecting") : "";
  pill.title = on && why ? t("call.reconnectingWhy", { why }) : "";
  document.body.classList.toggle("is-reconnecting", Boolean(on));
}

function showEnded(title, reason) {
  $("call").hidden = true;
  $("ended").hidden = false;
  $("ended-title").textContent = localTitle(title);
  $("ended-reason").textContent = reasonText(reason);
  // After a removal or the end of the room the same token cannot bring you back in.
  $("rejoin").hidden = !isRejoinable(title);
  document.title = t("ended.title", { title: localTitle(title) });
  showRecordLink();
}

/** Keeps the people panel, captions panel and control bar in step with the call. */
function renderRoom(controls, people) {
  const state = call.snapshot();
  controls.render(state);
  people.render(state.participants, state.self?.moderator);
  $("participant-count").textContent = t("call.inCall", { count: state.participants.length });
  $("moderator-tools").hidden = !state.self?.moderator;
  $("captions-status").textContent = t(state.captionsEnabled ? "captions.on" : "captions.off");
  $("captions-switch").hidden = !state.self?.moderator;
  $("captions-switch").textContent = t(state.captionsEnabled ? "captions.turnOff" : "captions.turnOn");
}

function buildView() {
  const grid = new Grid($("stage"));
  const captions = new Captions($("caption-list"), (participantId, text) =>
    grid.tile(participantId)?.showCaption(text));
  const people = new PeoplePanel($("people-list"), {
    mute: (id) => call.muteParticipant(id),
    remove: (person) => confirm(t("people.confirmRemove", { name: person.name })) && call.removeParticipant(person.id),
  });
  let controls = null;
  const view = {
    grid, captions, notify,
    ended: showEnded,
    // `room_ended` brings a record token to moderators (and attendees where allowed).
    record: ({ meeting_id: id, record_token: token }) => token && keepRecordToken(id, token),
    reconnecting: showReconnecting,
    changed: () => controls && renderRoom(controls, people),
    attachControls: (c) => { controls = c; view.changed(); },
  };
  return view;
}

function wirePanels() {
  const side = new SidePanel($("side-panel"));
  side.addToggle("people", $("open-people"));
  side.addToggle("captions", $("open-captions"));
  side.addToggle("chat", $("open-chat"));
  side.addToggle("devices", $("open-devices"));
  $("captions-switch").onclick = () => call.setRoomCaptions(!call.captionsEnabled);
  $("mute-all").onclick = () => {
    for (const participant of call.participants.values()) call.muteParticipant(participant.id);
  };
  $("copy-link").onclick = async () => {
    const link = `${location.origin}/r/${encodeURIComponent(room)}`;
    try {
      await navigator.clipboard.writeText(link);
      notify(t("call.linkCopied"));
    } catch {
      prompt(t("call.copyPrompt"), link);
    }
  };
}

async function enterCall(media) {
  $("call").hidden = false;
  $("room-name").textContent = room;
  document.title = t("call.title", { room });
  const view = buildView();
  if (media.speaker) view.grid.setAudioOutput(media.speaker);
  call = new Call(room, media, view);
  view.attachControls(new Controls(call));
  watermarkStage(media.token); // at once, beside the join: the stage is covered before the first video arrives
  onLanguageChange(() => {
    document.title = t("call.title", { room });
    view.grid.relabel();
    view.changed();
  });
  try {
    await call.start();
  } catch (err) {
    showEnded(t("ended.couldNotJoin"), errorText(err));
    return;
  }
  wireCallDevices(view);
  meetingId = readTokenClaims(media.token)?.mtg || null;
  if (call.moderator) fetchRecordToken(media.token);
  if (await mountChat($("chat-mount"), { room, token: media.token })) $("open-chat").hidden = false;
}

/** The watermark over the stage (people, remote video, screen shares): the viewer's identity from GET /v1/me with
 * the meeting token. Drawn when the meeting channel's setting (else the org's) is "important" or "all": a meeting
 * has no per-message flag, so its stage counts as important content. Without the chat service there is no
 * setting to read and nothing is drawn. */
async function watermarkStage(token) {
  try {
    const response = await fetch("/v1/me", { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) return;
    const me = await response.json();
    $("stage").dataset.watermark = me.watermark || "off";
    if (!me.watermark || me.watermark === "off" || !me.watermark_text) return;
    const report = (what) => fetch("/v1/watermark/tamper", {
      method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ page: "meeting", what }),
    });
    new Watermark({ text: me.watermark_text, report }).cover($("stage"));
  } catch (err) {
    console.info("watermark setting not available", err?.message || err);
  }
}

/** The devices panel: switch microphone, camera or speaker during the call, no rejoin. */
function wireCallDevices(view) {
  const picker = new DevicePicker($("call-devices"), {
    prefix: "call",
    current: (kind) => (kind === "audioinput" ? deviceOf(call.local.microphone)
      : kind === "videoinput" ? deviceOf(call.local.camera) : view.grid.audioOutput),
    onChoose: async (kind, deviceId) => {
      try {
        await switchCallDevice(call, kind, deviceId);
      } catch (err) {
        notify(t("devices.switchFailed", { error: err.message }));
      }
      meter?.watch(call.local.microphone);
    },
  });
  const meter = picker.meterEl ? new LevelMeter(picker.meterEl) : null;
  meter?.watch(call.local.microphone);
  $("open-devices").addEventListener("click", () => {
    picker.refresh();
    meter?.watch(call.local.microphone); // the microphone may have been opened since
  });
  picker.refresh();
}

/** For tests and debugging: the sender under a published source, and the devices in use. */
function extendDebugHook() {
  Object.assign(window.convene, {
    sender: (source) => call?.publisher?.published.get(source)?.transceiver.sender ?? null,
    devices: () => ({
      microphone: deviceOf(call?.local.microphone), camera: deviceOf(call?.local.camera),
      speaker: call?.view.grid.audioOutput ?? "",
      cameraLabel: call?.local.camera?.label ?? "", microphoneLabel: call?.local.microphone?.label ?? "",
    }),
  });
}

async function main() {
  initPage();
  const linked = takeToken(room); // first: the address bar loses the token at once
  installDebugHook(() => call);
  extendDebugHook();
  wirePanels();
  // A bare link (/r/room): a signed-in person gets a token of their own from the server, no name to type.
  const token = linked || (await memberToken(room));
  const media = await runPrejoin({ room, token });
  $("rejoin").onclick = async () => {
    // A fresh page is the simplest clean slate: new devices, new connections.
    location.reload();
  };
  await enterCall(media);
}

main();
