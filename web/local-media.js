// Our own camera, microphone and screen, and which devices they come from. Failures are answered
// with null, never thrown: a meeting without a camera is still a meeting.

// 960x540 is the smallest size at which browsers send all three simulcast layers.
const CAMERA = { width: { ideal: 960 }, height: { ideal: 540 }, frameRate: { ideal: 24 } };

const STORAGE = (kind) => `convene.device.${kind}`;

/** The device the person chose last time for a kind ("audioinput", "videoinput", "audiooutput"). */
export function preferredDevice(kind) {
  try {
    return localStorage.getItem(STORAGE(kind)) || "";
  } catch {
    return "";
  }
}

export function rememberDevice(kind, deviceId) {
  try {
    if (deviceId) localStorage.setItem(STORAGE(kind), deviceId);
    else localStorage.removeItem(STORAGE(kind));
  } catch {
    // not kept for next time; this call still uses it
  }
}

/** One track of `kind` from `deviceId` (the chosen one by default). A chosen device that is gone
 * (unplugged: OverconstrainedError / NotFoundError) falls back to the system's default. */
async function openTrack(kind, constraints, deviceId) {
  const withDevice = deviceId ? { ...constraints, deviceId: { exact: deviceId } } : constraints;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ [kind]: withDevice });
    return (kind === "video" ? stream.getVideoTracks() : stream.getAudioTracks())[0] || null;
  } catch (err) {
    if (deviceId && ["OverconstrainedError", "NotFoundError"].includes(err.name)) return openTrack(kind, constraints, "");
    console.warn(`no ${kind === "video" ? "camera" : "microphone"}`, err);
    return null;
  }
}

export function openCamera(deviceId = preferredDevice("videoinput")) {
  return openTrack("video", CAMERA, deviceId);
}

export function openMicrophone(deviceId = preferredDevice("audioinput")) {
  return openTrack("audio", {}, deviceId);
}

/** The devices of each kind: {audioinput: [...], videoinput: [...], audiooutput: [...]}. Labels are
 * empty until the page may use a camera or microphone. */
export async function listDevices() {
  const out = { audioinput: [], videoinput: [], audiooutput: [] };
  try {
    for (const device of await navigator.mediaDevices.enumerateDevices()) out[device.kind]?.push(device);
  } catch (err) {
    console.warn("enumerateDevices", err);
  }
  return out;
}

/** Whether sound can go to a chosen speaker (HTMLMediaElement.setSinkId; Chromium, newer Firefox). */
export function canChooseSpeaker() {
  return typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;
}

/** The device a live track comes from (for marking it chosen in a picker). */
export function deviceOf(track) {
  return track?.getSettings?.().deviceId || "";
}

/** Asks for the screen (and its audio where the browser offers it). Throws if the user says no. */
export async function openScreen() {
  const video = { frameRate: { ideal: 15 } };
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video, audio: true });
  } catch (err) {
    // Some browsers refuse the audio request itself (TypeError) rather than ignoring it: ask again without.
    if (err.name !== "TypeError" && err.name !== "NotSupportedError") throw err;
    stream = await navigator.mediaDevices.getDisplayMedia({ video });
  }
  return { video: stream.getVideoTracks()[0] || null, audio: stream.getAudioTracks()[0] || null };
}

export function canShareScreen() {
  return Boolean(navigator.mediaDevices?.getDisplayMedia);
}
