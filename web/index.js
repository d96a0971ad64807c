// The landing page: room name + your name → a token from the server → the meeting page.
import { joinRoom, meetingPath, ROOM_NAME } from "/static/api.js";

const form = document.getElementById("open-meeting");
const roomInput = document.getElementById("room");
const nameInput = document.getElementById("name");
const errorText = document.getElementById("form-error");
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
    errorText.textContent = "Room names use letters, digits, '-', '_' or '.' (up to 64).";
    return roomInput.focus();
  }
  if (!name) {
    errorText.textContent = "Please enter your name.";
    return nameInput.focus();
  }
  errorText.textContent = "";
  openButton.disabled = true;
  try {
    const { token } = await joinRoom(room, name);
    localStorage.setItem("convene.name", name);
    location.assign(meetingPath(room, token));
  } catch (err) {
    errorText.textContent = err.message;
    openButton.disabled = false;
  }
}

form.addEventListener("submit", openMeeting);
prefill();
