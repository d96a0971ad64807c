// The watermark (docs/watermark.md): the viewer's own identity ("name · login · date", from GET /v1/me, never
// from the address or the page) tiled over what they see, in an overlay that takes no clicks.
//
// The text is drawn rotated on a canvas, once; the canvas becomes the overlay's background image (a blob: URL,
// which the CSP's img-src allows), repeated. Every style is set through CSSOM with !important (the CSP forbids
// inline style attributes, not element.style). If the overlay is removed, hidden, moved or restyled, a
// MutationObserver (on the overlay and its host) or the periodic check draws it again at once and calls
// `report(what)`, which the page sends to POST /v1/watermark/tamper (the server audits one a minute per person;
// this side sends at most one every REPORT_EVERY_MS too).

const TILE_W = 300;
const TILE_H = 170;
const ANGLE = -Math.PI / 7;
const CHECK_EVERY_MS = 400;
const REPORT_EVERY_MS = 60_000;
const Z_INDEX = "2147483000";
// What the overlay must look like; anything else is tampering, put right on the spot.
const STYLE = {
  position: "absolute", inset: "0px", width: "auto", height: "auto", margin: "0px", display: "block",
  visibility: "visible",
  opacity: "1", "pointer-events": "none", "z-index": Z_INDEX, "background-repeat": "repeat",
  "background-position": "0px 0px", "background-size": `${TILE_W}px ${TILE_H}px`, "background-color": "transparent",
  transform: "none", filter: "none", "clip-path": "none", "mix-blend-mode": "normal",
};
// Computed values checked every round (a page stylesheet can change these without touching the element).
const COMPUTED = { display: "block", visibility: "visible", "pointer-events": "none", "z-index": Z_INDEX,
  transform: "none", filter: "none", "clip-path": "none", "background-repeat": "repeat", position: "absolute" };

/** The tile: the text twice, rotated, offset so the rows interleave. Returns a data: URL (PNG). */
export function drawTile(text, dark = true) {
  const ratio = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(TILE_W * ratio);
  canvas.height = Math.round(TILE_H * ratio);
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.font = "14px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillStyle = dark ? "rgba(255, 255, 255, 0.16)" : "rgba(0, 0, 0, 0.13)";
  for (const [x, y] of [[TILE_W * 0.3, TILE_H * 0.3], [TILE_W * 0.8, TILE_H * 0.8]]) {
    ctx.save();
    ctx.translate(x, y);
    ctx.rotate(ANGLE);
    ctx.fillText(text, 0, 0, TILE_W * 0.95);
    ctx.restore();
  }
  return canvas.toDataURL("image/png");
}

/** A data: URL as a blob: URL (the CSP's img-src allows both). The overlay's style then holds a short URL rather
 * than ~20 KB of base64, which every check would read back and compare (1.5 ms per overlay instead of 0.05). */
function blobUrl(dataUrl) {
  const [head, body] = dataUrl.split(",", 2);
  const bytes = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  return URL.createObjectURL(new Blob([bytes], { type: head.slice(5).split(";")[0] }));
}

/** Overlays over any number of hosts (the chat panel, each important message, the meeting stage), one text. */
export class Watermark {
  #overlays = new Map(); // host -> overlay element
  #observer;
  #timer;
  #lastReport = -Infinity;
  #image;
  #url;

  constructor({ text, report = () => {}, dark = true }) {
    this.text = String(text || "");
    this.report = report;
    this.tampered = 0;
    this.#url = blobUrl(drawTile(this.text, dark));
    this.#image = `url("${this.#url}")`;
    this.#observer = new MutationObserver((records) => this.#onMutations(records));
    this.#timer = setInterval(() => this.check(), CHECK_EVERY_MS);
  }

  /** Draws the watermark over `host` (idempotent). The host becomes a positioning box if it was not one. */
  cover(host) {
    if (!host || this.#overlays.has(host)) return;
    if (getComputedStyle(host).position === "static") host.style.setProperty("position", "relative");
    const overlay = document.createElement("div");
    this.#overlays.set(host, overlay);
    this.#draw(host, overlay);
    this.#observer.observe(host, { childList: true });
    this.#observer.observe(overlay, { attributes: true });
  }

  uncover(host) {
    const overlay = this.#overlays.get(host);
    if (!overlay) return;
    this.#overlays.delete(host);
    overlay.remove();
  }

  covers(host) {
    return this.#overlays.has(host);
  }

  /** Takes every overlay away (a channel with the watermark off, the page leaving). */
  destroy() {
    clearInterval(this.#timer);
    this.#observer.disconnect();
    for (const overlay of this.#overlays.values()) overlay.remove();
    this.#overlays.clear();
    URL.revokeObjectURL(this.#url);
  }

  #draw(host, overlay) {
    overlay.className = "cv-watermark";
    overlay.setAttribute("aria-hidden", "true");
    overlay.removeAttribute("hidden");
    overlay.dataset.watermarkText = this.text;
    overlay.dataset.tampered = String(this.tampered);
    for (const [name, value] of Object.entries(STYLE)) overlay.style.setProperty(name, value, "important");
    overlay.style.setProperty("background-image", this.#image, "important");
    if (overlay.parentNode !== host || host.lastElementChild !== overlay) host.append(overlay); // last: on top
  }

  /** What is wrong with an overlay, or "" when it is as drawn. */
  #wrong(host, overlay) {
    if (overlay.parentNode !== host) return "removed";
    if (overlay.hidden || overlay.className !== "cv-watermark") return "attribute";
    if (overlay.dataset.watermarkText !== this.text) return "text";
    for (const [name, value] of Object.entries(STYLE)) {
      if (overlay.style.getPropertyValue(name) !== value || overlay.style.getPropertyPriority(name) !== "important") {
        return `style:${name}`;
      }
    }
    if (overlay.style.getPropertyValue("background-image") !== this.#image) return "style:background-image";
    const computed = getComputedStyle(overlay);
    for (const [name, value] of Object.entries(COMPUTED)) {
      if (computed.getPropertyValue(name) !== value) return `computed:${name}`;
    }
    if (Number(computed.opacity) < 0.99) return "computed:opacity";
    if (computed.backgroundImage === "none") return "computed:background-image";
    if (host.offsetWidth > 0 && overlay.offsetWidth < host.clientWidth - 1) return "computed:size";
    return "";
  }

  /** Puts every overlay right; a wrong one counts as tampering. Our own redraw leaves nothing wrong. */
  check() {
    for (const [host, overlay] of [...this.#overlays]) {
      if (!host.isConnected) {  // the host itself went (a message drawn again, a panel closed): not tampering
        this.#overlays.delete(host);
        continue;
      }
      const what = this.#wrong(host, overlay);
      if (what) this.#tamper(host, overlay, what);
    }
  }

  #onMutations(records) {
    if (records.some((r) => r.type === "attributes" || [...r.removedNodes].some((n) => n.classList?.contains("cv-watermark")))) {
      this.check();
    }
  }

  #tamper(host, overlay, what) {
    this.tampered += 1;
    this.#draw(host, overlay);
    this.#observer.observe(overlay, { attributes: true });
    const now = performance.now();
    if (now - this.#lastReport >= REPORT_EVERY_MS) {
      this.#lastReport = now;
      Promise.resolve().then(() => this.report(what)).catch(() => {});
    }
  }
}

/** The setting in force for a channel: its own when it has one, else the organisation's (GET /v1/me). */
export function effectiveMode(channel, me) {
  return channel?.watermark || me?.watermark || "off";
}
