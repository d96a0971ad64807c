// The landing page: room name + your name → a token from the server → the meeting page. A signed-in person gets
// their home page here instead (home.js).
import { joinRoom, meetingPath, randomRoomName, ROOM_NAME } from "/static/api.js";
import { showHome } from "/static/home.js";
import { errorText, initPage, t } from "/static/i18n.js";
import { currentPerson } from "/static/session.js";

const form = document.getElementById("open-meeting");
const roomInput = document.getElementById("room");
const nameInput = document.getElementById("name");
const formError = document.getElementById("form-error");
const openButton = document.getElementById("open");

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
// The form works at once; a signed-in person's home replaces it as soon as the server says who is here.
currentPerson().then((person) => person && showHome(person));
