// The pre-join screen: who you are, a camera preview, microphone/camera on or off, "Join now".
import { joinRoom, readTokenClaims, rememberToken } from "/static/api.js";
import { setIcon } from "/static/icons.js";
import { openCamera, openMicrophone } from "/static/local-media.js";

const $ = (id) => document.getElementById(id);

function showToggle(button, on, device) {
  button.classList.add("round-btn--device");
  button.setAttribute("aria-pressed", String(on));
  button.setAttribute("aria-label", `Turn ${on ? "off" : "on"} ${device === "mic" ? "microphone" : "camera"}`);
  setIcon(button, device === "mic" ? (on ? "mic" : "micOff") : (on ? "cam" : "camOff"));
}

/** Shows the pre-join screen; resolves with what the call needs once "Join now" is pressed. */
export async function runPrejoin({ room, token }) {
  // Until the devices are open, "Join now" stays disabled and the form must not submit itself.
  $("prejoin-form").onsubmit = (event) => event.preventDefault();
  $("prejoin-room").textContent = room;
  const claims = token ? readTokenClaims(token) : null;
  if (claims?.name) {
    $("prejoin-name").textContent = claims.name;
    $("prejoin-as").hidden = false;
  } else {
    // A bare invite link (/r/room): ask for a name and fetch a guest token on join.
    $("prejoin-name-field").hidden = false;
    $("prejoin-name-input").value = localStorage.getItem("convene.name") || "";
  }

  const media = { mic: await openMicrophone(), cam: await openCamera() };
  const wanted = { mic: Boolean(media.mic), cam: Boolean(media.cam) };
  const preview = $("preview-video");
  const renderPreview = () => {
    preview.srcObject = wanted.cam && media.cam ? new MediaStream([media.cam]) : null;
    $("preview-off").hidden = wanted.cam && Boolean(media.cam);
    $("preview-off").textContent = media.cam ? "Camera is off" : "No camera found";
  };
  for (const device of ["mic", "cam"]) {
    const button = $(`preview-${device}`);
    button.disabled = !media[device];
    showToggle(button, wanted[device], device);
    button.onclick = () => {
      wanted[device] = !wanted[device];
      showToggle(button, wanted[device], device);
      renderPreview();
    };
  }
  renderPreview();

  return new Promise((resolve) => {
    $("prejoin-form").onsubmit = async (event) => {
      event.preventDefault();
      const joinToken = token || (await guestToken(room));
      if (!joinToken) return;
      $("prejoin").hidden = true;
      preview.srcObject = null;
      resolve({
        token: joinToken,
        name: readTokenClaims(joinToken)?.name || "",
        microphone: media.mic, micOn: wanted.mic,
        camera: media.cam, camOn: wanted.cam,
      });
    };
    $("join").disabled = false;
    $("join").focus();
  });
}

async function guestToken(room) {
  const name = $("prejoin-name-input").value.trim();
  if (!name) {
    $("prejoin-error").textContent = "Please enter your name.";
    $("prejoin-name-input").focus();
    return null;
  }
  try {
    const { token } = await joinRoom(room, name);
    localStorage.setItem("convene.name", name);
    // Kept for this tab (not in the address), so a reload rejoins as the same person.
    rememberToken(room, token);
    return token;
  } catch (err) {
    $("prejoin-error").textContent = err.message;
    return null;
  }
}
