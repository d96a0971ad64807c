// One call: the signaling socket, the two peer connections and the room as we know it. The view
// (grid, captions, people panel, control bar) is told about every change.
import { errorText, t } from "/static/i18n.js";
import { Publisher } from "/static/publisher.js";
import { Reconnector, finalFailure } from "/static/reconnector.js";
import { SignalingClient, signalingUrl } from "/static/signaling-client.js";
import { LayerChooser } from "/static/layers.js";
import { Subscriber } from "/static/subscriber.js";
import { openCamera, openMicrophone, openScreen } from "/static/local-media.js";

const VIDEO_SOURCES = { camera: "main", screen: "screen" };
const AUDIO_SOURCES = { microphone: "main", screen_audio: "screen" };
// A peer connection "disconnected" this long (ICE found no path back by itself) is rebuilt.
const ICE_GRACE_MS = 3000;
// Someone who dropped out (their connection was replaced, or ours was) keeps their tile this long, so that
// when they are back the grid does not shuffle; then they count as gone.
const RETURN_GRACE_MS = 20000;

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
    this.away = new Map(); // identity → {participant, timer}: dropped out, their tile kept for their return
    this.reconnects = 0; // times we got back in after losing the connection
    this.lastReconnect = null; // {why, seconds} of the latest, for the page and tests
    this.reconnector = new Reconnector(() => this.#rejoin(), () => this.#end("Could not reconnect",
      "The meeting could not be reached for three minutes. Check your network, then rejoin."));
    this.onNetwork = () => this.#networkChanged();
  }

  get moderator() {
    return Boolean(this.self?.grants?.moderator);
  }

  async start() {
    try {
      await this.#connect();
    } catch (err) {
      this.#stopLocalMedia(); // the camera light goes off with the failed join
      throw err;
    }
    window.addEventListener("online", this.onNetwork);
    window.addEventListener("offline", this.onNetwork);
    await this.#publishHeldTracks();
  }

  /** One connection: a signaling socket (joined), a publisher and a subscriber peer connection. */
  async #connect() {
    const signaling = new SignalingClient(await placedSignalingUrl(this.room, this.token));
    if (this.ended) throw new Error("the call has ended");
    this.signaling = signaling;
    this.#listen(signaling);
    const joined = await signaling.connect(this.token);
    if (this.ended || signaling !== this.signaling) {
      signaling.abandon();
      throw new Error("superseded");
    }
    // No await between here and the end of the constructors below: the subscriber's first offer
    // may be the very next message.
    const iceServers = toIceServers(joined.ice_servers);
    const previousSelf = this.self;
    this.self = joined.participant;
    this.captionsEnabled = Boolean(joined.room.captions);
    this.layers = new LayerChooser(signaling);
    this.publisher = new Publisher(signaling, iceServers);
    this.publisher.selfId = this.self.id;
    this.subscriber = new Subscriber(signaling, iceServers, () => this.#syncRemoteMedia());
    this.#watchIce(this.publisher.pc, "sending");
    this.#watchIce(this.subscriber.pc, "receiving");
    if (previousSelf) this.view.grid.rekey(previousSelf.id, this.self.id);
    this.#showSelf();
    this.#adoptRoom(joined.room.participants);
    this.view.changed();
  }

  #listen(signaling) {
    const on = (type, handler) => signaling.on(type, handler);
    on("participant_joined", ({ participant }) => {
      if (this.#welcomeBack(participant)) return;
      this.#addParticipant(participant);
      this.view.notify(t("call.joined", { name: participant.name }));
    });
    on("participant_left", ({ participant_id, reason }) => {
      // A replaced participant is someone reconnecting: they are back in a moment, under a new id.
      if (reason === "replaced") this.#markAway(participant_id);
      else this.#removeParticipant(participant_id);
    });
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
    on("room_ended", (message) => {
      this.view.record?.(message); // the meeting page's record token, for moderators
      this.#end("The meeting has ended", message.reason);
    });
    // Before the socket's close (4001), which the browser reports after our peer connections fail.
    on("replaced", () => {
      const final = finalFailure({ closeCode: 4001 });
      this.#end(final.title, final.reason);
    });
    // Before the close (4410): the account was deactivated; a retry would only be refused.
    on("account_disabled", () => {
      const final = finalFailure({ closeCode: 4410 });
      this.#end(final.title, final.reason);
    });
    on("reconnect", ({ reason }) => { this.restartNotice = reason || "server restart"; });
    on("error", (message) => this.#serverError(message));
    on("close", ({ byUs, code, reason }) => {
      // Before the first `joined`, start() reports the failure itself; a failed rejoin, the reconnector.
      if (byUs || this.ended || !this.self || signaling !== this.signaling || this.reconnector.active) return;
      const final = finalFailure({ closeCode: code, closeReason: reason });
      if (final) return this.#end(final.title, final.reason);
      this.#connectionLost(this.restartNotice ? "the server is restarting" : `the connection closed (code ${code})`);
    });
  }

  // ---- losing the connection and getting back in

  /** A peer connection that fails (or stays disconnected) means media stopped: rebuild the connection. */
  #watchIce(pc, label) {
    let timer = null;
    pc.addEventListener("connectionstatechange", () => {
      clearTimeout(timer);
      if (pc !== this.publisher?.pc && pc !== this.subscriber?.pc) return; // an old connection
      if (pc.connectionState === "failed") this.#connectionLost(`the ${label} connection failed`);
      else if (pc.connectionState === "disconnected") {
        timer = setTimeout(() => {
          if (pc.connectionState === "disconnected") this.#connectionLost(`the ${label} connection was lost`);
        }, ICE_GRACE_MS);
      }
    });
  }

  /** The browser went offline or came back (another network): the old paths are gone either way. */
  #networkChanged() {
    if (this.ended || !this.self) return;
    if (this.reconnector.active) {
      if (navigator.onLine) this.reconnector.retryNow();
      return;
    }
    this.#connectionLost(navigator.onLine ? "the network changed" : "the network is offline");
  }

  #connectionLost(why) {
    if (this.ended || this.reconnector.active) return;
    console.info("reconnecting:", why);
    this.lostWhy = why;
    this.#dropConnection();
    // Everyone stays on screen for now, without media: they are back when we are.
    for (const participant of [...this.participants.values()]) this.#markAway(participant.id, true);
    this.reconnector.start();
    this.view.reconnecting(true, why);
    this.view.changed();
  }

  /** Closes the socket and both peer connections but keeps our camera, microphone and screen. */
  #dropConnection() {
    this.signaling?.abandon();
    this.publisher?.close(false);
    this.subscriber?.close();
    this.layers?.close();
    this.publisher = this.subscriber = this.layers = null;
    this.pausedVideos = new Set();
    this.goneTracks = new Set();
  }

  /** One attempt of the reconnector: true when back in. */
  async #rejoin() {
    try {
      await this.#connect();
    } catch (err) {
      if (this.ended) return false;
      const final = finalFailure(err);
      if (final) {
        this.#end(final.title, final.reason);
        return false;
      }
      console.info("rejoin failed:", err.message);
      this.#dropConnection();
      return false;
    }
    const seconds = (Date.now() - this.reconnector.since) / 1000;
    this.reconnects += 1;
    this.lastReconnect = { why: this.lostWhy, seconds };
    this.restartNotice = null;
    this.view.reconnecting(false);
    this.view.notify(t("call.reconnected"));
    this.#publishHeldTracks(); // not awaited: the reconnector is done, a lost socket now starts anew
    return true;
  }

  /** The room as the server sent it in `joined`: people we knew keep their tiles (by identity), people
   * who are not there (yet) are away for a while, new people join. */
  #adoptRoom(list) {
    for (const participant of list) {
      if (participant.id === this.self.id) continue;
      if (!this.#welcomeBack(participant)) this.#addParticipant(participant);
    }
  }

  /** Someone who dropped out: their tile stays (without media) until they are back or the grace is over. */
  #markAway(participantId, quietly = false) {
    const participant = this.participants.get(participantId);
    if (!participant) return;
    this.participants.delete(participantId);
    for (const kind of ["main", "screen"]) {
      const tile = this.view.grid.tile(participantId, kind);
      tile?.setVideoTrack(null);
      tile?.setAudioTrack(null);
    }
    this.view.grid.removeTile(participantId, "screen");
    clearTimeout(this.away.get(participant.identity)?.timer);
    const timer = setTimeout(() => {
      this.away.delete(participant.identity);
      this.view.grid.removeParticipant(participantId);
      if (!quietly || !this.reconnector.active) this.view.notify(t("call.left", { name: participant.name }));
      this.view.changed();
    }, RETURN_GRACE_MS);
    this.away.set(participant.identity, { participant, timer });
    this.view.changed();
  }

  /** True when `participant` is someone away coming back: their tile takes the new id. */
  #welcomeBack(participant) {
    const away = this.away.get(participant.identity);
    if (!away) return false;
    clearTimeout(away.timer);
    this.away.delete(participant.identity);
    this.view.grid.rekey(away.participant.id, participant.id);
    this.#addParticipant(participant);
    return true;
  }

  #showSelf() {
    const tile = this.view.grid.ensureTile(this.self.id, "main", this.self.name, true);
    tile.setVideoTrack(this.camOn ? this.local.camera : null);
    tile.setMicMuted(!this.micOn);
  }

  /** Publishes what we hold: at the start, and again after every reconnect (mute state included). */
  async #publishHeldTracks() {
    const stream = new MediaStream();
    const entries = [];
    if (this.local.microphone) {
      this.local.microphone.enabled = this.micOn;
      entries.push({ source: "microphone", track: this.local.microphone, stream, muted: !this.micOn });
    }
    if (this.camOn && this.local.camera) {
      entries.push({ source: "camera", track: this.local.camera, stream, muted: false });
    }
    const screen = this.local.screen;
    if (screen) {
      const screenStream = new MediaStream();
      entries.push({ source: "screen", track: screen.video, stream: screenStream, muted: false });
      if (screen.audio) entries.push({ source: "screen_audio", track: screen.audio, stream: screenStream, muted: false });
    }
    if (entries.length) await this.#tryPublish(entries);
  }

  async #tryPublish(entries) {
    const publisher = this.publisher;
    if (!publisher) return false; // reconnecting: the next connection publishes what we hold
    try {
      await publisher.publish(entries);
      return true;
    } catch (err) {
      // A connection dropped meanwhile is not worth a notice: the next one publishes again.
      if (publisher === this.publisher) {
        this.view.notify(t("call.publishFailed", { what: entries.map((e) => t(`source.${e.source}`)).join(t("and")), error: errorText(err) }));
      }
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
    this.view.notify(t("call.left", { name: participant.name }));
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
    const mic = this.publisher?.published.get("microphone");
    if (!mic || mic.trackId !== trackId || !muted || !this.micOn) return;
    this.micOn = false;
    this.local.microphone.enabled = false;
    this.view.grid.tile(this.self.id).setMicMuted(true);
    const moderator = this.participants.get(by)?.name || t("call.aModerator");
    this.view.notify(t("call.mutedBy", { name: moderator }));
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
      if (!this.local.microphone) return this.view.notify(t("call.noMicrophone"));
      this.micOn = true;
      await this.#tryPublish([{ source: "microphone", track: this.local.microphone, stream: new MediaStream() }]);
    } else {
      this.micOn = on;
      this.local.microphone.enabled = on; // silence at once; the server then stops forwarding
      await this.publisher?.setMuted("microphone", !on).catch((err) => console.warn(err));
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
      return this.view.notify(t("call.noCamera"));
    }
    if (this.publisher?.published.has("camera")) {
      await this.publisher.replaceTrack("camera", this.local.camera);
      await this.publisher.setMuted("camera", false).catch((err) => console.warn(err));
    } else {
      await this.#tryPublish([{ source: "camera", track: this.local.camera, stream: new MediaStream() }]);
    }
  }

  /** Stops the camera itself (its light goes off) but keeps the transceiver for turning it back on. */
  async #cameraOff() {
    await this.publisher?.setMuted("camera", true).catch((err) => console.warn(err));
    await this.publisher?.replaceTrack("camera", null);
    this.local.camera?.stop();
    this.local.camera = null;
  }

  async startScreenShare() {
    if (this.local.screen) return;
    let screen;
    try {
      screen = await openScreen();
    } catch (err) {
      return this.view.notify(t("call.shareNotStarted", { reason: err.name || err.message }));
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
      await this.publisher?.unpublish(source).catch((err) => this.view.notify(t("call.shareStopFailed", { error: err.message })));
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
    this.signaling?.leave();
    this.#end("You left the meeting", "");
  }

  #end(title, reason) {
    if (this.ended) return;
    this.ended = { title, reason };
    this.reconnector.stop();
    window.removeEventListener("online", this.onNetwork);
    window.removeEventListener("offline", this.onNetwork);
    for (const { timer } of this.away.values()) clearTimeout(timer);
    this.view.reconnecting(false);
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
    this.view.notify(errorText(message));
  }

  /** The room as this page sees it, for the people panel and tests. */
  snapshot() {
    const people = [...this.participants.values()].map((p) => {
      const mic = [...p.tracks.values()].find((t) => t.source === "microphone");
      return { id: p.id, name: p.name, micMuted: !mic || mic.muted, isSelf: false,
        tracks: [...p.tracks.values()] };
    });
    // Who dropped out is still listed (marked away) until they are back or the grace is over.
    for (const { participant } of this.away.values()) {
      people.push({ id: participant.id, name: participant.name, micMuted: true, isSelf: false, away: true, tracks: [] });
    }
    if (this.self) people.unshift({ id: this.self.id, name: this.self.name, micMuted: !this.micOn, isSelf: true });
    return {
      room: this.room,
      self: this.self && { id: this.self.id, name: this.self.name, moderator: this.moderator },
      joined: Boolean(this.self) && !this.ended,
      reconnecting: this.reconnector.active,
      reconnects: this.reconnects,
      lastReconnect: this.lastReconnect,
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
