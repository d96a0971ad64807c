// One call: the signaling socket, the two peer connections and the room as we know it. The view
// (grid, captions, people panel, control bar) is told about every change.
import { Publisher } from "/static/publisher.js";
import { SignalingClient, signalingUrl } from "/static/signaling-client.js";
import { LayerChooser } from "/static/layers.js";
import { Subscriber } from "/static/subscriber.js";
import { openCamera, openMicrophone, openScreen } from "/static/local-media.js";

const VIDEO_SOURCES = { camera: "main", screen: "screen" };
const AUDIO_SOURCES = { microphone: "main", screen_audio: "screen" };

/** The worker to talk to (a server with several workers places rooms); this server if it can't say. */
async function placedSignalingUrl(room, token) {
  try {
    const response = await fetch(`/v1/rooms/${encodeURIComponent(room)}/placement`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    if (response.ok) {
      const { ws_url: url } = await response.json();
      if (url) return url;
    }
  } catch (err) {
    console.warn("placement", err);
  }
  return signalingUrl(room);
}

/** joined.ice_servers may list URLs or RTCIceServer objects. */
function toIceServers(list) {
  return (list || []).map((entry) => (typeof entry === "string" ? { urls: entry } : entry));
}

export class Call {
  /** media: {token, microphone, micOn, camera, camOn}; view: {grid, captions, people, notify, ended, changed}. */
  constructor(room, media, view) {
    this.room = room;
    this.token = media.token;
    this.view = view;
    this.local = { microphone: media.microphone, camera: media.camOn ? media.camera : null, screen: null };
    this.micOn = Boolean(media.microphone && media.micOn);
    this.camOn = Boolean(this.local.camera);
    if (media.camera && !media.camOn) media.camera.stop(); // camera light off if it will not be used
    this.self = null;
    this.participants = new Map(); // id → {id, identity, name, tracks: Map(track_id → track)}
    this.goneTracks = new Set();   // unpublished track ids the subscriber table may still list
    this.pausedVideos = new Set(); // videos the server holds back from us (last-N in big rooms)
    this.captionsEnabled = false;
    this.ended = null;
  }

  get moderator() {
    return Boolean(this.self?.grants?.moderator);
  }

  async start() {
    this.signaling = new SignalingClient(await placedSignalingUrl(this.room, this.token));
    this.layers = new LayerChooser(this.signaling);
    this.#listen();
    let joined;
    try {
      joined = await this.signaling.connect(this.token);
    } catch (err) {
      this.#stopLocalMedia(); // the camera light goes off with the failed join
      throw err;
    }
    // No await between here and the end of the constructors below: the subscriber's first offer
    // may be the very next message.
    const iceServers = toIceServers(joined.ice_servers);
    this.self = joined.participant;
    this.captionsEnabled = Boolean(joined.room.captions);
    this.publisher = new Publisher(this.signaling, iceServers);
    this.publisher.selfId = this.self.id;
    this.subscriber = new Subscriber(this.signaling, iceServers, () => this.#syncRemoteMedia());
    this.#showSelf();
    for (const participant of joined.room.participants) {
      if (participant.id !== this.self.id) this.#addParticipant(participant);
    }
    this.view.changed();
    await this.#publishInitialTracks();
  }

  #listen() {
    const on = (type, handler) => this.signaling.on(type, handler);
    on("participant_joined", ({ participant }) => {
      this.#addParticipant(participant);
      this.view.notify(`${participant.name} joined`);
    });
    on("participant_left", ({ participant_id }) => this.#removeParticipant(participant_id));
    on("track_published", ({ participant_id, track }) => this.#trackPublished(participant_id, track));
    on("track_unpublished", ({ participant_id, track_id }) => this.#trackUnpublished(participant_id, track_id));
    on("track_muted", (message) => this.#trackMuted(message));
    on("video_paused", ({ track_ids }) => {
      this.pausedVideos = new Set(track_ids || []);
      this.#syncRemoteMedia();
    });
    on("active_speakers", ({ speakers }) => this.view.grid.setActiveSpeakers(speakers || []));
    on("caption", (message) => this.view.captions.handle(message));
    on("captions", ({ enabled }) => {
      this.captionsEnabled = enabled;
      this.view.changed();
    });
    on("candidate", ({ target, candidate }) =>
      (target === "publisher" ? this.publisher : this.subscriber)?.addRemoteCandidate(candidate));
    on("removed", ({ reason }) => this.#end("You were removed from the meeting", reason));
    on("room_ended", ({ reason }) => this.#end("The meeting has ended", reason));
    on("error", (message) => this.#serverError(message));
    on("close", ({ byUs, code }) => {
      // Before `joined`, start() reports the failure itself (with the server's reason).
      if (!byUs && this.self) this.#end("You were disconnected", `The connection to the server closed (code ${code}).`);
    });
  }

  #showSelf() {
    const tile = this.view.grid.ensureTile(this.self.id, "main", this.self.name, true);
    tile.setVideoTrack(this.camOn ? this.local.camera : null);
    tile.setMicMuted(!this.micOn);
  }

  async #publishInitialTracks() {
    const stream = new MediaStream();
    const entries = [];
    if (this.local.microphone) {
      this.local.microphone.enabled = this.micOn;
      entries.push({ source: "microphone", track: this.local.microphone, stream, muted: !this.micOn });
    }
    if (this.local.camera) entries.push({ source: "camera", track: this.local.camera, stream, muted: false });
    if (entries.length) await this.#tryPublish(entries);
  }

  async #tryPublish(entries) {
    try {
      await this.publisher.publish(entries);
      return true;
    } catch (err) {
      this.view.notify(`Could not publish ${entries.map((e) => e.source).join(" and ")}: ${err.message}`);
      return false;
    }
  }

  // ---- the room as the server describes it

  #addParticipant(participant) {
    const tracks = new Map((participant.tracks || []).map((track) => [track.id, track]));
    this.participants.set(participant.id, { ...participant, tracks });
    this.view.grid.ensureTile(participant.id, "main", participant.name);
    this.#syncRemoteMedia();
  }

  #removeParticipant(participantId) {
    const participant = this.participants.get(participantId);
    if (!participant) return;
    this.participants.delete(participantId);
    this.view.grid.removeParticipant(participantId);
    this.view.notify(`${participant.name} left`);
    this.view.changed();
  }

  #trackPublished(participantId, track) {
    const participant = this.participants.get(participantId);
    if (!participant) return; // our own tracks: the publisher learns their ids
    participant.tracks.set(track.id, track);
    this.goneTracks.delete(track.id);
    this.#syncRemoteMedia();
  }

  #trackUnpublished(participantId, trackId) {
    this.goneTracks.add(trackId);
    this.participants.get(participantId)?.tracks.delete(trackId);
    this.#syncRemoteMedia();
  }

  #trackMuted({ participant_id, track_id, muted, by }) {
    if (participant_id === this.self.id) return this.#mutedByModerator(track_id, muted, by);
    const track = this.participants.get(participant_id)?.tracks.get(track_id);
    if (track) track.muted = muted;
    this.#syncRemoteMedia();
  }

  #mutedByModerator(trackId, muted, by) {
    const mic = this.publisher.published.get("microphone");
    if (!mic || mic.trackId !== trackId || !muted || !this.micOn) return;
    this.micOn = false;
    this.local.microphone.enabled = false;
    this.view.grid.tile(this.self.id).setMicMuted(true);
    const moderator = this.participants.get(by)?.name || "A moderator";
    this.view.notify(`${moderator} muted your microphone`);
    this.view.changed();
  }

  /** Puts what the subscriber receives into tiles; makes and drops screen tiles as shares come and go. */
  #syncRemoteMedia() {
    const received = (this.subscriber?.remoteTracks() || []).filter((t) => !this.goneTracks.has(t.track_id));
    for (const participant of this.participants.values()) {
      const mine = received.filter((t) => t.participant_id === participant.id);
      const sharing = [...participant.tracks.values()].some((t) => t.source === "screen") ||
        mine.some((t) => t.source === "screen");
      if (sharing) this.view.grid.ensureTile(participant.id, "screen", participant.name);
      else this.view.grid.removeTile(participant.id, "screen");
      this.#fillTiles(participant, mine);
    }
    this.#chooseLayers(received);
    this.view.changed();
  }

  /** Each remote camera in the layer its tile's size calls for. */
  #chooseLayers(received) {
    const entries = received
      .filter((t) => t.source === "camera")
      .map((t) => ({ el: this.view.grid.tile(t.participant_id, "main")?.el, trackId: t.track_id }))
      .filter((e) => e.el);
    this.layers?.watch(entries);
  }

  #fillTiles(participant, mine) {
    for (const kind of ["main", "screen"]) {
      const tile = this.view.grid.tile(participant.id, kind);
      if (!tile) continue;
      const video = mine.find((t) => VIDEO_SOURCES[t.source] === kind);
      const audio = mine.find((t) => AUDIO_SOURCES[t.source] === kind);
      tile.setVideoTrack(video?.track || null);
      tile.setAudioTrack(audio?.track || null);
      const published = [...participant.tracks.values()];
      tile.setVideoMuted(published.some((t) => VIDEO_SOURCES[t.source] === kind && t.muted) ||
        Boolean(video && this.pausedVideos.has(video.track_id)));
      const mic = published.find((t) => t.source === "microphone");
      tile.setMicMuted(!mic || mic.muted);
    }
  }

  // ---- our own media

  async setMicrophone(on) {
    if (!this.local.microphone) {
      if (!on) return;
      this.local.microphone = await openMicrophone();
      if (!this.local.microphone) return this.view.notify("No microphone available");
      this.micOn = true;
      await this.#tryPublish([{ source: "microphone", track: this.local.microphone, stream: new MediaStream() }]);
    } else {
      this.micOn = on;
      this.local.microphone.enabled = on; // silence at once; the server then stops forwarding
      await this.publisher.setMuted("microphone", !on).catch((err) => console.warn(err));
    }
    this.view.grid.tile(this.self.id).setMicMuted(!this.micOn);
    this.view.changed();
  }

  async setCamera(on) {
    if (on === this.camOn) return;
    this.camOn = on;
    if (on) await this.#cameraOn();
    else await this.#cameraOff();
    this.view.grid.tile(this.self.id).setVideoTrack(this.camOn ? this.local.camera : null);
    this.view.changed();
  }

  async #cameraOn() {
    this.local.camera = await openCamera();
    if (!this.local.camera) {
      this.camOn = false;
      return this.view.notify("No camera available");
    }
    if (this.publisher.published.has("camera")) {
      await this.publisher.replaceTrack("camera", this.local.camera);
      await this.publisher.setMuted("camera", false).catch((err) => console.warn(err));
    } else {
      await this.#tryPublish([{ source: "camera", track: this.local.camera, stream: new MediaStream() }]);
    }
  }

  /** Stops the camera itself (its light goes off) but keeps the transceiver for turning it back on. */
  async #cameraOff() {
    await this.publisher.setMuted("camera", true).catch((err) => console.warn(err));
    await this.publisher.replaceTrack("camera", null);
    this.local.camera?.stop();
    this.local.camera = null;
  }

  async startScreenShare() {
    if (this.local.screen) return;
    let screen;
    try {
      screen = await openScreen();
    } catch (err) {
      return this.view.notify(`Screen sharing was not started (${err.name || err.message})`);
    }
    this.local.screen = screen;
    const stream = new MediaStream();
    const entries = [{ source: "screen", track: screen.video, stream }];
    if (screen.audio) entries.push({ source: "screen_audio", track: screen.audio, stream });
    screen.video.addEventListener("ended", () => this.stopScreenShare()); // the browser's own "Stop sharing"
    const tile = this.view.grid.ensureTile(this.self.id, "screen", this.self.name, true);
    tile.setVideoTrack(screen.video);
    this.view.changed();
    if (!(await this.#tryPublish(entries))) await this.stopScreenShare();
  }

  async stopScreenShare() {
    const screen = this.local.screen;
    if (!screen) return;
    this.local.screen = null;
    this.view.grid.removeTile(this.self.id, "screen");
    this.view.changed();
    for (const source of ["screen", "screen_audio"]) {
      await this.publisher.unpublish(source).catch((err) => this.view.notify(`Could not stop sharing: ${err.message}`));
    }
    screen.video.stop();
    screen.audio?.stop();
  }

  // ---- moderation

  muteParticipant(participantId) {
    this.signaling.send({ type: "mute_participant", participant_id: participantId });
  }

  removeParticipant(participantId) {
    this.signaling.send({ type: "remove_participant", participant_id: participantId });
  }

  endRoom() {
    this.signaling.send({ type: "end_room" });
  }

  setRoomCaptions(enabled) {
    this.signaling.send({ type: "set_captions", enabled });
  }

  // ---- the end

  leave() {
    this.signaling.leave();
    this.#end("You left the meeting", "");
  }

  #end(title, reason) {
    if (this.ended) return;
    this.ended = { title, reason };
    this.publisher?.close();
    this.subscriber?.close();
    this.layers?.close();
    this.#stopLocalMedia();
    this.view.ended(title, reason);
  }

  #stopLocalMedia() {
    this.local.microphone?.stop();
    this.local.camera?.stop();
    this.local.screen?.video?.stop();
    this.local.screen?.audio?.stop();
  }

  #serverError(message) {
    // Errors about an offer reach the publisher's pending negotiation; a refused ICE candidate (say a
    // link-local address) leaves the call on the others, nothing to tell the user; the rest are worth a notice.
    if (["publish", "unpublish", "offer", "candidate"].includes(message.ref)) return;
    console.warn("server error", message);
    this.view.notify(message.message || message.code);
  }

  /** The room as this page sees it, for the people panel and tests. */
  snapshot() {
    const people = [...this.participants.values()].map((p) => {
      const mic = [...p.tracks.values()].find((t) => t.source === "microphone");
      return { id: p.id, name: p.name, micMuted: !mic || mic.muted, isSelf: false,
        tracks: [...p.tracks.values()] };
    });
    if (this.self) people.unshift({ id: this.self.id, name: this.self.name, micMuted: !this.micOn, isSelf: true });
    return {
      room: this.room,
      self: this.self && { id: this.self.id, name: this.self.name, moderator: this.moderator },
      joined: Boolean(this.self) && !this.ended,
      ended: this.ended,
      micOn: this.micOn,
      camOn: this.camOn,
      sharingScreen: Boolean(this.local.screen),
      captionsEnabled: this.captionsEnabled,
      participants: people,
      published: [...(this.publisher?.published.values() || [])].map((e) => ({
        source: e.source, mid: e.mid, track_id: e.trackId, muted: Boolean(e.muted),
      })),
    };
  }
}
