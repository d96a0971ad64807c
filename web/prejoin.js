// The pre-join screen: who you are, a camera preview, the microphone/camera/speaker to use with a
// level meter, microphone/camera on or off, "Join now".
import { joinRoom, readTokenClaims, rememberToken } from "/static/api.js";
import { DevicePicker, LevelMeter } from "/static/devices.js";
import { errorText, onLanguageChange, t } from "/static/i18n.js";
import { setIcon } from "/static/icons.js";
import { deviceOf, openCamera, openMicrophone, preferredDevice } from "/static/local-media.js";

const $ = (id) => document.getElementById(id);

function showToggle(button, on, device) {
  button.classList.add("round-btn--device");
  button.setAttribute("aria-pressed", String(on));
  const label = t(device === "mic" ? (on ? "media.micOff" : "media.micOn") : (on ? "media.camOff" : "media.camOn"));
  button.setAttribute("aria-label", label);
  button.title = label;
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
    $("preview-off").dataset.i18n = media.cam ? "prejoin.cameraOff" : "prejoin.noCamera";
    $("preview-off").textContent = t($("preview-off").dataset.i18n);
  };
  const renderToggles = () => {
    for (const device of ["mic", "cam"]) {
      $(`preview-${device}`).disabled = !media[device];
      showToggle($(`preview-${device}`), wanted[device], device);
    }
  };
  for (const device of ["mic", "cam"]) {
    $(`preview-${device}`).onclick = () => {
      wanted[device] = !wanted[device];
      renderToggles();
      renderPreview();
    };
  }
  renderToggles();
  renderPreview();
  const stopTranslating = onLanguageChange(renderToggles);

  // Pickers: a new choice replaces the preview's track at once (the old device is released).
  const speaker = { id: preferredDevice("audiooutput") };
  let meter = null;
  const picker = new DevicePicker($("prejoin-devices"), {
    prefix: "prejoin",
    current: (kind) => (kind === "audioinput" ? deviceOf(media.mic) : kind === "videoinput" ? deviceOf(media.cam) : speaker.id),
    onChoose: async (kind, deviceId) => {
      $("prejoin-error").textContent = "";
      if (kind === "audiooutput") speaker.id = deviceId;
      else if (kind === "audioinput") {
        media.mic?.stop();
        media.mic = await openMicrophone(deviceId);
        meter?.watch(media.mic);
      } else {
        media.cam?.stop();
        media.cam = await openCamera(deviceId);
        renderPreview();
      }
      renderToggles();
    },
  });
  await picker.refresh();
  if (picker.meterEl) {
    meter = new LevelMeter(picker.meterEl);
    meter.watch(media.mic);
  }

  return new Promise((resolve) => {
    $("prejoin-form").onsubmit = async (event) => {
      event.preventDefault();
      const joinToken = token || (await guestToken(room));
      if (!joinToken) return;
      $("prejoin").hidden = true;
      preview.srcObject = null;
      meter?.close();
      picker.destroy();
      stopTranslating();
      resolve({
        token: joinToken,
        name: readTokenClaims(joinToken)?.name || "",
        microphone: media.mic, micOn: wanted.mic && Boolean(media.mic),
        camera: media.cam, camOn: wanted.cam && Boolean(media.cam),
        speaker: speaker.id,
      });
    };
    $("join").disabled = false;
    $("join").focus();
  });
}

async function guestToken(room) {
  const name = $("prejoin-name-input").value.trim();
  if (!name) {
    $("prejoin-error").textContent = t("landing.noName");
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
    $("prejoin-error").textContent = errorText(err);
    return null;
  }
}
