// Device pickers (microphone, camera, speaker) and a microphone level meter, for the pre-join screen
// and the call's devices panel. Switching never rejoins: the call swaps the track under the same
// RTCRtpSender (Publisher.replaceTrack), and sound goes to another speaker by setSinkId.
import { onLanguageChange, t } from "/static/i18n.js";
import { canChooseSpeaker, deviceOf, listDevices, openCamera, openMicrophone, preferredDevice, rememberDevice }
  from "/static/local-media.js";

const KINDS = [
  { kind: "audioinput", label: "devices.microphone", id: "microphone" },
  { kind: "videoinput", label: "devices.camera", id: "camera" },
  { kind: "audiooutput", label: "devices.speaker", id: "speaker" },
];

/** Three labelled <select>s (and a level meter under the microphone) in `container`.
 * current(kind) → the deviceId in use; onChoose(kind, deviceId) → switches (may throw). */
export class DevicePicker {
  #selects = new Map();

  constructor(container, { prefix, current, onChoose, meter = true }) {
    this.container = container;
    this.current = current;
    this.onChoose = onChoose;
    this.meterEl = null;
    for (const { kind, label, id } of KINDS) {
      if (kind === "audiooutput" && !canChooseSpeaker()) continue;
      const field = document.createElement("div");
      field.className = "field devices__field";
      const name = document.createElement("label");
      name.htmlFor = `${prefix}-${id}`;
      name.dataset.i18n = label;
      name.textContent = t(label);
      const select = document.createElement("select");
      select.id = `${prefix}-${id}`;
      select.className = "devices__select";
      select.dataset.kind = kind;
      select.onchange = () => this.#choose(kind, select);
      field.append(name, select);
      if (kind === "audioinput" && meter) {
        this.meterEl = levelMeterElement(`${prefix}-level`);
        field.append(this.meterEl);
      }
      container.append(field);
      this.#selects.set(kind, select);
    }
    this.#stopListening = onLanguageChange(() => this.refresh());
    this.#onDeviceChange = () => this.refresh();
    navigator.mediaDevices?.addEventListener?.("devicechange", this.#onDeviceChange);
  }

  #stopListening;
  #onDeviceChange;

  /** Lists the devices again (labels appear once a camera or microphone is open). */
  async refresh() {
    const devices = await listDevices();
    for (const [kind, select] of this.#selects) {
      const list = devices[kind];
      const options = list.map((device, index) => {
        const option = document.createElement("option");
        option.value = device.deviceId;
        option.textContent = device.label || t(`devices.unnamed.${kind}`, { n: index + 1 });
        return option;
      });
      if (!options.length) {
        const none = document.createElement("option");
        none.value = "";
        none.textContent = kind === "audiooutput" ? t("devices.default") : t("devices.none");
        options.push(none);
      }
      select.replaceChildren(...options);
      select.disabled = list.length < 1;
      const inUse = this.current(kind);
      if (inUse && list.some((d) => d.deviceId === inUse)) select.value = inUse;
    }
  }

  async #choose(kind, select) {
    const deviceId = select.value;
    rememberDevice(kind, deviceId);
    select.disabled = true;
    try {
      await this.onChoose(kind, deviceId);
    } finally {
      select.disabled = false;
      await this.refresh();
    }
  }

  destroy() {
    this.#stopListening?.();
    navigator.mediaDevices?.removeEventListener?.("devicechange", this.#onDeviceChange);
    this.container.replaceChildren();
  }
}

function levelMeterElement(id) {
  const meter = document.createElement("div");
  meter.id = id;
  meter.className = "level";
  meter.setAttribute("role", "meter");
  meter.setAttribute("aria-valuemin", "0");
  meter.setAttribute("aria-valuemax", "100");
  meter.setAttribute("aria-valuenow", "0");
  meter.dataset.i18nAttr = "aria-label:prejoin.micLevel";
  meter.setAttribute("aria-label", t("prejoin.micLevel"));
  meter.dataset.level = "0";
  const bar = document.createElement("span");
  bar.className = "level__bar";
  meter.append(bar);
  return meter;
}

/** Shows how loud a microphone track is (WebAudio AnalyserNode, RMS of the waveform, ten times a
 * second). The meter's data-level (0–1) is what the bar shows. */
export class LevelMeter {
  #context = null;
  #source = null;
  #timer = null;

  constructor(element) {
    this.element = element;
    this.bar = element.querySelector(".level__bar");
  }

  /** Measures `track` from now on (null: none, the bar rests at zero). */
  watch(track) {
    this.#disconnect();
    if (!track) return this.#show(0);
    this.#context ??= new AudioContext();
    // Browsers may start an AudioContext suspended until the page is used; any click wakes it.
    if (this.#context.state === "suspended") {
      this.#context.resume().catch(() => {});
      document.addEventListener("click", () => this.#context?.resume().catch(() => {}), { once: true });
    }
    const analyser = this.#context.createAnalyser();
    analyser.fftSize = 1024;
    this.#source = this.#context.createMediaStreamSource(new MediaStream([track]));
    this.#source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    this.#timer = setInterval(() => {
      if (!this.element.isConnected || this.element.offsetParent === null) return; // not shown: no work
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const x of samples) sum += x * x;
      const rms = Math.sqrt(sum / samples.length);
      // Speech sits around RMS 0.02–0.2: a square-root scale makes quiet talk visible.
      this.#show(Math.min(1, Math.sqrt(rms * 5)));
    }, 100);
  }

  #show(level) {
    this.element.dataset.level = level.toFixed(3);
    this.element.setAttribute("aria-valuenow", String(Math.round(level * 100)));
    if (this.bar) this.bar.style.transform = `scaleX(${level})`; // CSSOM, allowed under our CSP
  }

  #disconnect() {
    clearInterval(this.#timer);
    this.#timer = null;
    this.#source?.disconnect();
    this.#source = null;
  }

  close() {
    this.#disconnect();
    this.#context?.close().catch(() => {});
    this.#context = null;
  }
}

/** Switches a device in a running call without rejoining. `call` is the page's Call: its local
 * tracks (call.local) and publisher; `grid` plays remote sound. */
export async function switchCallDevice(call, kind, deviceId) {
  if (kind === "audiooutput") return call.view.grid.setAudioOutput(deviceId);
  if (kind === "audioinput") return switchMicrophone(call, deviceId);
  if (kind === "videoinput") return switchCamera(call, deviceId);
}

async function switchMicrophone(call, deviceId) {
  const old = call.local.microphone;
  if (!old || deviceOf(old) === deviceId) return; // no microphone yet: the next one opens the chosen device
  const track = await openMicrophone(deviceId);
  if (!track) throw new Error(t("call.noMicrophone"));
  track.enabled = old.enabled; // muted stays muted
  if (call.publisher?.published.has("microphone")) await call.publisher.replaceTrack("microphone", track);
  call.local.microphone = track;
  old.stop();
}

async function switchCamera(call, deviceId) {
  const old = call.local.camera;
  if (!old || !call.camOn || deviceOf(old) === deviceId) return; // camera off: it opens the chosen one when turned on
  const track = await openCamera(deviceId);
  if (!track) throw new Error(t("call.noCamera"));
  if (call.publisher?.published.has("camera")) await call.publisher.replaceTrack("camera", track);
  call.local.camera = track;
  call.view.grid.tile(call.self.id)?.setVideoTrack(track);
  old.stop();
}

export { preferredDevice };
