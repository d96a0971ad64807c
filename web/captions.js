// Live captions: `caption` events carry a segment_id; interim text for a segment is replaced by
// later events with the same id until one is final, which is then kept.
//
// The panel reads like a transcript: a speaker's consecutive segments grow one paragraph (a new one starts
// when someone else speaks, or after a long pause). Everyone sees everyone's captions, their own included
// (the server sends each caption to the whole room). The reader picks the caption size (kept in
// localStorage, applied to the panel and to the lines under the tiles). The list follows the talk while the
// reader is at its bottom; scrolled up to read, it stays put until they scroll back down (or press "Latest").

import { onLanguageChange, t } from "/static/i18n.js";

const KEEP_SEGMENTS = 300;          // the panel's scrollback
const TILE_CAPTION_LINGER_MS = 6000; // how long the last words stay under a tile
const NEW_PARAGRAPH_GAP_S = 8;       // a pause this long starts a new paragraph, even for the same speaker
const FOLLOW_SLACK_PX = 40;          // this close to the bottom counts as "at the bottom"
const SIZE_KEY = "convene.captionSize";
const SIZES = ["small", "medium", "large", "x-large"];


/** The caption size the reader chose (medium until they choose). */
export function captionSize() {
  const kept = localStorage.getItem(SIZE_KEY);
  return SIZES.includes(kept) ? kept : "medium";
}

function applySize(size) {
  for (const s of SIZES) document.body.classList.toggle(`captions-size-${s}`, s === size);
}

export class Captions {
  #segments = new Map(); // segment_id → {message, span, paragraph}
  #tileTimers = new Map();
  #last = null;          // the newest paragraph: {item, participantId, end}
  #following = true;

  /** list: the panel's <ol>; showUnderTile(participantId, text) writes the line under a tile. */
  constructor(list, showUnderTile) {
    this.list = list;
    this.showUnderTile = showUnderTile;
    applySize(captionSize());
    this.#mountControls();
    list.addEventListener("scroll", () => {
      this.#following = this.#atBottom();
      this.latest.hidden = this.#following;
    }, { passive: true });
  }

  handle(message) {
    let segment = this.#segments.get(message.segment_id);
    if (!segment) {
      segment = { message, span: null, paragraph: this.#paragraphFor(message) };
      segment.span = document.createElement("span");
      segment.span.className = "caption__segment";
      segment.paragraph.text.append(segment.span);
      segment.paragraph.segments += 1;
      this.#segments.set(message.segment_id, segment);
      this.#trim();
    }
    segment.message = message;
    segment.paragraph.end = Math.max(segment.paragraph.end, message.end ?? 0);
    this.#render(segment);
    this.#showUnderTile(message);
    this.#follow();
  }

  /** The paragraph a new segment joins: the newest one when it is the same speaker's and recent, else a new one. */
  #paragraphFor(message) {
    const last = this.#last;
    if (last && last.participantId === message.participant_id && last.item.isConnected
        && (message.start ?? 0) - last.end < NEW_PARAGRAPH_GAP_S) {
      return last;
    }
    const item = document.createElement("li");
    item.className = "caption";
    item.dataset.participantId = message.participant_id;
    const speaker = document.createElement("span");
    speaker.className = "caption__speaker";
    speaker.textContent = message.name || t("captions.someone");
    const text = document.createElement("div");
    text.className = "caption__text";
    item.append(speaker, text);
    this.list.append(item);
    this.#last = { item, text, speaker, participantId: message.participant_id, end: message.end ?? 0, segments: 0 };
    return this.#last;
  }

  #render({ message, span, paragraph }) {
    if (message.name) paragraph.speaker.textContent = message.name;
    // Segments are joined by a space (Chinese and Japanese text is written without one).
    const cjk = /^[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]/.test(message.text || "");
    span.textContent = (span.previousSibling && !cjk ? " " : "") + (message.text || "");
    span.classList.toggle("caption--interim", !message.final);
  }

  #atBottom() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < FOLLOW_SLACK_PX;
  }

  /** Keeps the newest words in view while the reader is at the bottom; otherwise offers the way back. */
  #follow() {
    if (this.#following) {
      this.list.scrollTop = this.list.scrollHeight;
    } else {
      this.latest.hidden = false;
    }
  }

  #mountControls() {
    const bar = document.createElement("div");
    bar.className = "captions__tools";
    const label = document.createElement("label");
    label.className = "captions__size";
    const labelText = document.createElement("span");
    label.append(labelText, " ");
    const select = document.createElement("select");
    select.id = "caption-size";
    for (const size of SIZES) {
      const option = document.createElement("option");
      option.value = size;
      select.append(option);
    }
    select.value = captionSize();
    select.onchange = () => {
      localStorage.setItem(SIZE_KEY, select.value);
      applySize(select.value);
      if (this.#following) this.list.scrollTop = this.list.scrollHeight;
    };
    label.append(select);
    bar.append(label);
    this.list.before(bar);
    this.latest = document.createElement("button");
    this.latest.type = "button";
    this.latest.id = "captions-latest";
    this.latest.className = "btn btn--small captions__latest";
    this.latest.hidden = true;
    const words = () => {
      labelText.textContent = t("captions.size");
      for (const option of select.options) option.textContent = t(`captions.size.${option.value}`);
      this.latest.textContent = t("captions.latest");
    };
    words();
    onLanguageChange(words);
    this.latest.onclick = () => {
      this.#following = true;
      this.latest.hidden = true;
      this.list.scrollTop = this.list.scrollHeight;
    };
    this.list.after(this.latest);
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
      oldest.span.remove();
      oldest.paragraph.segments -= 1;
      if (oldest.paragraph.segments <= 0) oldest.paragraph.item.remove();
      this.#segments.delete(oldestId);
    }
  }

  /** For the test hook: the captions as the panel holds them (one entry per segment). */
  describe() {
    return [...this.#segments.values()].map(({ message }) => ({
      segment_id: message.segment_id, participant_id: message.participant_id, text: message.text, final: message.final,
    }));
  }

  /** For the test hook: the panel's paragraphs as the reader sees them, and whether it follows the talk. */
  paragraphs() {
    return {
      following: this.#following,
      items: [...this.list.querySelectorAll(".caption")].map((item) => ({
        participant_id: item.dataset.participantId,
        speaker: item.querySelector(".caption__speaker").textContent,
        text: item.querySelector(".caption__text").textContent,
      })),
    };
  }
}
