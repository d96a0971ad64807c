// The meeting page: pre-join, then the call, then the end screen.
import { takeToken } from "/static/api.js";
import { Call } from "/static/call.js";
import { Captions } from "/static/captions.js";
import { mountChat } from "/static/chat-mount.js";
import { Controls } from "/static/controls.js";
import { installDebugHook } from "/static/debug-hook.js";
import { Grid } from "/static/grid.js";
import { PeoplePanel } from "/static/people-panel.js";
import { runPrejoin } from "/static/prejoin.js";
import { SidePanel } from "/static/side-panel.js";

const $ = (id) => document.getElementById(id);
const room = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
let call = null;

function notify(text) {
  const toast = $("toast");
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => (toast.hidden = true), 4000);
}

function showEnded(title, reason) {
  $("call").hidden = true;
  $("ended").hidden = false;
  $("ended-title").textContent = title;
  $("ended-reason").textContent = reason || "";
  // After a removal or the end of the room the same token cannot bring you back in.
  $("rejoin").hidden = title !== "You left the meeting" && title !== "You were disconnected";
  document.title = `${title} — Convene`;
}

/** Keeps the people panel, captions panel and control bar in step with the call. */
function renderRoom(controls, people) {
  const state = call.snapshot();
  controls.render(state);
  people.render(state.participants, state.self?.moderator);
  $("participant-count").textContent = `${state.participants.length} in call`;
  $("moderator-tools").hidden = !state.self?.moderator;
  $("captions-status").textContent = state.captionsEnabled ? "Live captions are on." : "Live captions are off.";
  $("captions-switch").hidden = !state.self?.moderator;
  $("captions-switch").textContent = `Turn captions ${state.captionsEnabled ? "off" : "on"} for everyone`;
}

function buildView() {
  const grid = new Grid($("stage"));
  const captions = new Captions($("caption-list"), (participantId, text) =>
    grid.tile(participantId)?.showCaption(text));
  const people = new PeoplePanel($("people-list"), {
    mute: (id) => call.muteParticipant(id),
    remove: (person) => confirm(`Remove ${person.name} from the meeting?`) && call.removeParticipant(person.id),
  });
  let controls = null;
  const view = {
    grid, captions, notify,
    ended: showEnded,
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
  $("captions-switch").onclick = () => call.setRoomCaptions(!call.captionsEnabled);
  $("mute-all").onclick = () => {
    for (const participant of call.participants.values()) call.muteParticipant(participant.id);
  };
  $("copy-link").onclick = async () => {
    const link = `${location.origin}/r/${encodeURIComponent(room)}`;
    try {
      await navigator.clipboard.writeText(link);
      notify("Invite link copied");
    } catch {
      prompt("Copy this invite link:", link);
    }
  };
}

async function enterCall(media) {
  $("call").hidden = false;
  $("room-name").textContent = room;
  document.title = `${room} — Convene`;
  const view = buildView();
  call = new Call(room, media, view);
  view.attachControls(new Controls(call));
  try {
    await call.start();
  } catch (err) {
    showEnded("Could not join the meeting", err.message);
    return;
  }
  if (await mountChat($("chat-mount"), { room, token: media.token })) $("open-chat").hidden = false;
}

async function main() {
  const token = takeToken(room); // first: the address bar loses the token at once
  installDebugHook(() => call);
  wirePanels();
  const media = await runPrejoin({ room, token });
  $("rejoin").onclick = async () => {
    // A fresh page is the simplest clean slate: new devices, new connections.
    location.reload();
  };
  await enterCall(media);
}

main();
