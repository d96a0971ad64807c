// Our own camera, microphone and screen. Failures are answered with null, never thrown: a meeting
// without a camera is still a meeting.

// 960x540 is the smallest size at which browsers send all three simulcast layers.
const CAMERA = { width: { ideal: 960 }, height: { ideal: 540 }, frameRate: { ideal: 24 } };

export async function openCamera() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: CAMERA });
    return stream.getVideoTracks()[0] || null;
  } catch (err) {
    console.warn("no camera", err);
    return null;
  }
}

export async function openMicrophone() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    return stream.getAudioTracks()[0] || null;
  } catch (err) {
    console.warn("no microphone", err);
    return null;
  }
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
