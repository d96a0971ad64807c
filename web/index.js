// The landing page: room name + your name → a token from the server → the meeting page.
import { joinRoom, meetingPath, ROOM_NAME } from "/static/api.js";
import { errorText, initPage, t } from "/static/i18n.js";

const form = document.getElementById("open-meeting");
const roomInput = document.getElementById("room");
const nameInput = document.getElementById("name");
const formError = document.getElementById("form-error");
const openButton = document.getElementById("open");

/** A readable random room name like "kqz-ftwm-pxa", so "just start a meeting" needs no typing. */
function randomRoomName() {
  const letters = "abcdefghijkmnopqrstuvwxyz";
  const pick = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => letters[b % letters.length]).join("");
  return `${pick(3)}-${pick(4)}-${pick(3)}`;
}

function prefill() {
  const params = new URLSearchParams(location.search);
  roomInput.value = params.get("room") || randomRoomName();
  nameInput.value = localStorage.getItem("convene.name") || "";
  (nameInput.value ? openButton : nameInput).focus();
}

async function openMeeting(event) {
  event.preventDefault();
  const room = roomInput.value.trim();
  const name = nameInput.value.trim();
  if (!ROOM_NAME.test(room)) {
    formError.textContent = t("landing.badRoom");
    return roomInput.focus();
  }
  if (!name) {
    formError.textContent = t("landing.noName");
    return nameInput.focus();
  }
  formError.textContent = "";
  openButton.disabled = true;
  try {
    const { token } = await joinRoom(room, name);
    localStorage.setItem("convene.name", name);
    location.assign(meetingPath(room, token));
  } catch (err) {
    formError.textContent = errorText(err);
    openButton.disabled = false;
  }
}

initPage();
form.addEventListener("submit", openMeeting);
prefill();
