// The grid of tiles. People tiles share the space evenly; a screen share takes the stage and the
// people move to a strip beside it.
import { Tile } from "/static/tile.js";

export class Grid {
  #tiles = new Map(); // "participantId/kind" → Tile
  #audioOutput = ""; // the speaker chosen for everyone's sound ("" = the system's default)

  constructor(stage) {
    this.stage = stage;
    this.screens = stage.querySelector(".stage__screens");
    this.people = stage.querySelector(".stage__people");
  }

  tile(participantId, kind = "main") {
    return this.#tiles.get(`${participantId}/${kind}`);
  }

  ensureTile(participantId, kind, name, isLocal = false) {
    let tile = this.tile(participantId, kind);
    if (!tile) {
      tile = new Tile({ participantId, name, kind, isLocal });
      if (this.#audioOutput) tile.setAudioOutput(this.#audioOutput);
      this.#tiles.set(`${participantId}/${kind}`, tile);
      const parent = kind === "screen" ? this.screens : this.people;
      if (isLocal) parent.prepend(tile.el);
      else parent.append(tile.el);
      this.#relayout();
    }
    return tile;
  }

  removeTile(participantId, kind) {
    const tile = this.tile(participantId, kind);
    if (!tile) return;
    tile.setVideoTrack(null);
    tile.setAudioTrack(null);
    tile.el.remove();
    this.#tiles.delete(`${participantId}/${kind}`);
    this.#relayout();
  }

  /** Someone back under a new id (they, or we, reconnected) keeps their tiles and their place. */
  rekey(oldId, newId) {
    if (oldId === newId) return;
    for (const kind of ["main", "screen"]) {
      const tile = this.#tiles.get(`${oldId}/${kind}`);
      if (!tile) continue;
      this.#tiles.delete(`${oldId}/${kind}`);
      tile.participantId = newId;
      tile.el.dataset.participantId = newId;
      this.#tiles.set(`${newId}/${kind}`, tile);
    }
  }

  removeParticipant(participantId) {
    this.removeTile(participantId, "main");
    this.removeTile(participantId, "screen");
  }

  all() {
    return [...this.#tiles.values()];
  }

  /** Plays everyone's sound on `deviceId` (a speaker from enumerateDevices), now and for later tiles. */
  async setAudioOutput(deviceId) {
    this.#audioOutput = deviceId || "";
    await Promise.all(this.all().map((tile) => tile.setAudioOutput(this.#audioOutput)));
  }

  get audioOutput() {
    return this.#audioOutput;
  }

  /** Names that depend on the language ("(you)", "(presenting)") are written again after a switch. */
  relabel() {
    for (const tile of this.#tiles.values()) {
      tile.setName(tile.name);
      tile.setMicMuted(tile.micMuted); // its icon's title
    }
  }

  /** Rings everyone the server lists as speaking; the loudest gets the strong ring. */
  setActiveSpeakers(speakers) {
    const ids = speakers.map((s) => s.participant_id);
    for (const tile of this.#tiles.values()) {
      if (tile.kind !== "main") continue;
      const index = ids.indexOf(tile.participantId);
      tile.setSpeaking(index >= 0, index === 0);
    }
  }

  #relayout() {
    const peopleCount = this.people.childElementCount;
    const presenting = this.screens.childElementCount > 0;
    this.stage.classList.toggle("stage--presenting", presenting);
    // Columns for a roughly square arrangement of 16:9 tiles: 1, 2, 2, 2, 3, 3, 3, 3, 3, 4…
    const columns = presenting ? 1 : Math.max(1, Math.ceil(Math.sqrt(peopleCount)));
    this.people.style.setProperty("--columns", String(columns));
    this.people.style.setProperty("--rows", String(Math.max(1, Math.ceil(peopleCount / columns))));
  }
}
