// Live captions: `caption` events carry a segment_id; interim text for a segment is replaced by
// later events with the same id until one is final, which is then kept.

const KEEP_SEGMENTS = 300;          // the panel's scrollback
const TILE_CAPTION_LINGER_MS = 6000; // how long the last words stay under a tile

export class Captions {
  #segments = new Map(); // segment_id → {message, item}
  #tileTimers = new Map();

  /** list: the panel's <ol>; showUnderTile(participantId, text) writes the line under a tile. */
  constructor(list, showUnderTile) {
    this.list = list;
    this.showUnderTile = showUnderTile;
  }

  handle(message) {
    let segment = this.#segments.get(message.segment_id);
    if (!segment) {
      segment = { message, item: this.#newItem() };
      this.#segments.set(message.segment_id, segment);
      this.#trim();
    }
    segment.message = message;
    this.#render(segment);
    this.#showUnderTile(message);
  }

  #newItem() {
    const item = document.createElement("li");
    item.className = "caption";
    const speaker = document.createElement("span");
    speaker.className = "caption__speaker";
    const text = document.createElement("span");
    text.className = "caption__text";
    item.append(speaker, text);
    const nearBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    this.list.append(item);
    // Follow the conversation unless the reader scrolled up to read something.
    if (nearBottom) this.list.scrollTop = this.list.scrollHeight;
    return item;
  }

  #render({ message, item }) {
    item.querySelector(".caption__speaker").textContent = message.name || "Someone";
    item.querySelector(".caption__text").textContent = message.text;
    item.classList.toggle("caption--interim", !message.final);
  }

  #showUnderTile(message) {
    this.showUnderTile(message.participant_id, message.text);
    clearTimeout(this.#tileTimers.get(message.participant_id));
    this.#tileTimers.set(message.participant_id, setTimeout(() => this.showUnderTile(message.participant_id, ""),
      TILE_CAPTION_LINGER_MS));
  }

  #trim() {
    while (this.#segments.size > KEEP_SEGMENTS) {
      const [oldestId, oldest] = this.#segments.entries().next().value;
      oldest.item.remove();
      this.#segments.delete(oldestId);
    }
  }

  /** For the test hook: the transcript as the panel shows it. */
  describe() {
    return [...this.#segments.values()].map(({ message }) => ({
      segment_id: message.segment_id, participant_id: message.participant_id, text: message.text, final: message.final,
    }));
  }
}
