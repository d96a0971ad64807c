// One tile of the grid: a participant's camera + microphone, or one screen share.
import { t } from "/static/i18n.js";
import { setIcon } from "/static/icons.js";

function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  return (words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || "?").slice(0, 2)).toUpperCase();
}

/** A stable hue per name, so avatars are told apart at a glance. */
function hueOf(text) {
  let hash = 0;
  for (const ch of text) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

export class Tile {
  constructor({ participantId, name, kind, isLocal }) {
    this.participantId = participantId;
    this.kind = kind; // "main" (camera + mic) or "screen"
    this.isLocal = isLocal;
    this.videoTrack = null;
    this.audioTrack = null;
    this.videoMuted = false;
    this.micMuted = false;
    this.speaking = false;
    this.#build(name);
  }

  #build(name) {
    this.el = document.createElement("figure");
    this.el.className = `tile tile--${this.kind}${this.isLocal ? " tile--local" : ""}`;
    this.el.dataset.participantId = this.participantId;
    this.el.dataset.kind = this.kind;
    this.video = Object.assign(document.createElement("video"), { autoplay: true, playsInline: true, muted: true });
    this.audio = Object.assign(document.createElement("audio"), { autoplay: true });
    this.avatar = document.createElement("div");
    this.avatar.className = "tile__avatar";
    this.avatarCircle = document.createElement("span");
    this.avatar.append(this.avatarCircle);
    this.label = document.createElement("figcaption");
    this.label.className = "tile__label";
    this.micIcon = document.createElement("span");
    this.micIcon.className = "tile__mic";
    this.nameEl = document.createElement("span");
    this.nameEl.className = "tile__name";
    this.label.append(this.micIcon, this.nameEl);
    this.caption = document.createElement("p");
    this.caption.className = "tile__caption";
    this.caption.hidden = true;
    this.el.append(this.video, this.avatar, this.audio, this.label, this.caption);
    this.setName(name);
    this.#render();
  }

  setName(name) {
    this.name = name;
    const shown = this.kind === "screen" ? t("tile.presenting", { name }) : this.isLocal ? t("tile.you", { name }) : name;
    this.nameEl.textContent = shown;
    this.el.setAttribute("aria-label", shown);
    this.avatarCircle.textContent = initials(name);
    this.avatarCircle.style.background = `hsl(${hueOf(name)} 45% 38%)`;
  }

  setVideoTrack(track) {
    if (track === this.videoTrack) return;
    this.videoTrack = track;
    this.video.srcObject = track ? new MediaStream([track]) : null;
    // A remote track is "muted" while no frames arrive (e.g. the server stopped forwarding it).
    if (track) track.onmute = track.onunmute = () => this.#render();
    this.#render();
  }

  setAudioTrack(track) {
    if (track === this.audioTrack || this.isLocal) return; // never play ourselves back
    this.audioTrack = track;
    this.audio.srcObject = track ? new MediaStream([track]) : null;
    if (track) this.audio.play().catch(() => {}); // autoplay may need the join click; it had one
  }

  /** Plays this tile's sound on another speaker (where the browser can: setSinkId). */
  async setAudioOutput(deviceId) {
    if (typeof this.audio.setSinkId !== "function") return;
    try {
      await this.audio.setSinkId(deviceId || "");
    } catch (err) {
      console.warn("setSinkId", err); // e.g. the speaker was unplugged: the sound stays where it was
    }
  }

  setVideoMuted(muted) {
    this.videoMuted = muted;
    this.#render();
  }

  setMicMuted(muted) {
    this.micMuted = muted;
    this.#render();
  }

  setSpeaking(speaking, loudest) {
    this.speaking = speaking;
    this.el.classList.toggle("tile--speaking", speaking);
    this.el.classList.toggle("tile--loudest", Boolean(loudest));
  }

  showCaption(text) {
    this.caption.textContent = text;
    this.caption.hidden = !text;
  }

  get showsVideo() {
    return Boolean(this.videoTrack) && !this.videoMuted && this.videoTrack.readyState === "live" &&
      (this.isLocal || !this.videoTrack.muted);
  }

  #render() {
    const showsVideo = this.showsVideo;
    this.video.hidden = !showsVideo;
    this.avatar.hidden = showsVideo;
    const micVisible = this.kind === "main";
    this.micIcon.hidden = !micVisible;
    if (micVisible) {
      setIcon(this.micIcon, this.micMuted ? "micOff" : "mic");
      this.micIcon.classList.toggle("tile__mic--off", this.micMuted);
      this.micIcon.title = t(this.micMuted ? "media.micIsOff" : "media.micIsOn");
    }
  }

  describe() {
    return {
      participant_id: this.participantId,
      name: this.name,
      kind: this.kind,
      local: this.isLocal,
      showsVideo: this.showsVideo,
      hasAudio: Boolean(this.audioTrack),
      micMuted: this.micMuted,
      speaking: this.speaking,
      caption: this.caption.hidden ? "" : this.caption.textContent,
      width: this.el.clientWidth,
      height: this.el.clientHeight,
    };
  }
}

