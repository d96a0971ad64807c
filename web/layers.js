// Asks the server for the simulcast layer each remote camera should arrive in, by the size its tile
// is drawn at: small tiles get the low layer, large ones the high layer. Sent only when it changes.

const DEBOUNCE_MS = 250;

/** The layer that fills a tile this many device pixels wide (publishers send 1/4, 1/2 and full size). */
export function layerForWidth(pixels) {
  if (pixels < 300) return "low";
  if (pixels < 600) return "mid";
  return "high";
}

export class LayerChooser {
  #signaling;
  #observer;
  #watched = new Map(); // tile element → track id
  #sent = "";
  #timer = null;

  constructor(signaling) {
    this.#signaling = signaling;
    this.#observer = new ResizeObserver(() => this.#schedule());
  }

  /** Which camera track each tile shows now: [{el, trackId}]. */
  watch(entries) {
    const next = new Map(entries.filter((e) => e.trackId).map((e) => [e.el, e.trackId]));
    for (const el of this.#watched.keys()) if (!next.has(el)) this.#observer.unobserve(el);
    for (const el of next.keys()) if (!this.#watched.has(el)) this.#observer.observe(el);
    this.#watched = next;
    this.#schedule();
  }

  #schedule() {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#send(), DEBOUNCE_MS);
  }

  #send() {
    const layers = {};
    for (const [el, trackId] of this.#watched) {
      layers[trackId] = layerForWidth(el.getBoundingClientRect().width * (window.devicePixelRatio || 1));
    }
    const text = JSON.stringify(layers);
    if (text === this.#sent) return;
    this.#sent = text;
    this.#signaling.send({ type: "set_subscriptions", layers });
  }

  close() {
    clearTimeout(this.#timer);
    this.#observer.disconnect();
  }
}
