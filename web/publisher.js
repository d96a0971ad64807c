// The publisher connection: we offer, the server answers. It carries only what we send
// (microphone, camera, screen). Every change is one offer/answer round, run one at a time.
import { SignalingError } from "/static/signaling-client.js";

const ANSWER_TIMEOUT_MS = 15000;
const CAMERA_LAYERS = [
  { rid: "l", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "m", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "h", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];
const NEGOTIATING_REFS = new Set(["publish", "unpublish", "offer"]);

export class Publisher {
  #signaling;
  #pendingAnswer = null;
  #queue = Promise.resolve();
  #trackIdWaiters = new Map(); // source → [resolve]

  constructor(signaling, iceServers) {
    this.#signaling = signaling;
    this.pc = new RTCPeerConnection({ iceServers });
    this.selfId = null;
    /** source → {source, track, stream, transceiver, mid, trackId, muted} */
    this.published = new Map();
    this.pc.onicecandidate = ({ candidate }) =>
      signaling.send({ type: "candidate", target: "publisher", candidate: candidate ? candidate.toJSON() : null });
    signaling.on("answer", (message) => {
      if (message.target === "publisher") this.#settleAnswer(message, null);
    });
    signaling.on("error", (message) => {
      if (NEGOTIATING_REFS.has(message.ref)) this.#settleAnswer(null, new SignalingError(message));
    });
    // No answer will come over a closed socket: fail the offer now rather than after the timeout.
    signaling.on("close", () => this.#settleAnswer(null, new Error("the connection to the server closed")));
    // After the answer to a `publish`, `published` names the track id each of our mids got.
    signaling.on("published", (message) => {
      for (const { mid, track } of message.tracks || []) this.#learnTrackId({ mid, id: track?.id });
    });
    signaling.on("track_published", (message) => {
      if (message.participant_id === this.selfId) this.#learnTrackId(message.track);
    });
    // The server says which layers of our video anyone receives: the encoder pauses the others
    // (all of them when nobody shows our camera), which saves our CPU and uplink and the server's.
    signaling.on("track_demand", (message) => this.#applyDemand(message).catch((err) => console.warn("track demand", err)));
  }

  async #applyDemand({ track_id, active, layers }) {
    const entry = [...this.published.values()].find((e) => e.trackId === track_id);
    if (!entry) return;
    const sender = entry.transceiver.sender;
    const params = sender.getParameters();
    let changed = false;
    for (const encoding of params.encodings || []) {
      const wanted = encoding.rid ? (layers || []).includes(encoding.rid) : Boolean(active);
      if (encoding.active !== wanted) {
        encoding.active = wanted;
        changed = true;
      }
    }
    if (changed) await sender.setParameters(params);
  }

  /** Publishes new tracks in one offer: entries are {source, track, stream, muted}. */
  async publish(entries) {
    try {
      return await this.#negotiate(() => this.#addTransceivers(entries));
    } catch (err) {
      // A refused publish leaves nothing behind: no sender, no entry waiting for a track id.
      for (const entry of entries) {
        const published = this.published.get(entry.source);
        if (published?.track !== entry.track) continue;
        if (this.pc.signalingState !== "closed") this.pc.removeTrack(published.transceiver.sender);
        this.published.delete(entry.source);
      }
      throw err;
    }
  }

  /** Adds one sendonly transceiver per entry; returns how to word the offer once mids exist. */
  #addTransceivers(entries) {
    for (const entry of entries) {
      const init = { direction: "sendonly", streams: [entry.stream] };
      // The camera goes out in three sizes (low to high, as the server expects), so that each viewer
      // gets the size of its tile and a slow viewer does not hold the others back.
      if (entry.source === "camera") init.sendEncodings = CAMERA_LAYERS;
      const transceiver = this.pc.addTransceiver(entry.track, init);
      this.published.set(entry.source, { ...entry, transceiver, mid: null, trackId: null });
    }
    return (sdp) => {
      const tracks = entries.map((entry) => {
        const published = this.published.get(entry.source);
        published.mid = published.transceiver.mid; // known only after setLocalDescription
        return { mid: published.mid, source: entry.source, muted: Boolean(entry.muted) };
      });
      return { type: "publish", sdp, tracks };
    };
  }

  /** Stops sending one source; the m-line stays (inactive) so mids never shift. */
  async unpublish(source) {
    const entry = this.published.get(source);
    if (!entry) return;
    const trackId = await this.#trackIdOf(source);
    await this.#negotiate(() => {
      this.pc.removeTrack(entry.transceiver.sender);
      this.published.delete(source);
      return (sdp) => ({ type: "unpublish", track_id: trackId, sdp });
    });
    entry.track.stop();
  }

  /** Tells the server to stop (or resume) forwarding one of our tracks. */
  async setMuted(source, muted) {
    const entry = this.published.get(source);
    if (!entry) return;
    entry.muted = muted;
    const trackId = await this.#trackIdOf(source);
    if (this.published.get(source) === entry) this.#signaling.send({ type: "mute", track_id: trackId, muted });
  }

  /** Swaps the media under a published source without renegotiating (e.g. camera back on). */
  async replaceTrack(source, track) {
    const entry = this.published.get(source);
    if (!entry) return;
    await entry.transceiver.sender.replaceTrack(track);
    entry.track = track;
  }

  addRemoteCandidate(candidate) {
    return this.pc.addIceCandidate(candidate || null).catch((err) => console.warn("publisher candidate", err));
  }

  #learnTrackId(track) {
    const trackId = track.track_id || track.id;
    if (!trackId) return;
    for (const entry of this.published.values()) {
      const sameMid = track.mid !== undefined && track.mid === entry.mid;
      const sameSource = track.mid === undefined && track.source === entry.source && !entry.trackId;
      if (sameMid || sameSource) {
        entry.trackId = trackId;
        for (const resolve of this.#trackIdWaiters.get(entry.source) || []) resolve(trackId);
        this.#trackIdWaiters.delete(entry.source);
        return;
      }
    }
  }

  /** Our own track ids arrive from the server after publishing; wait a little for them. */
  #trackIdOf(source) {
    const entry = this.published.get(source);
    if (entry?.trackId) return Promise.resolve(entry.trackId);
    return new Promise((resolve, reject) => {
      if (!this.#trackIdWaiters.has(source)) this.#trackIdWaiters.set(source, []);
      this.#trackIdWaiters.get(source).push(resolve);
      setTimeout(() => reject(new Error(`the server never told us the track id of our ${source}`)), 5000);
    });
  }

  #settleAnswer(answer, error) {
    const pending = this.#pendingAnswer;
    this.#pendingAnswer = null;
    if (!pending) return;
    if (error) pending.reject(error);
    else pending.resolve(answer);
  }

  /** One offer/answer round. `prepare` changes the transceivers and returns sdp → message. */
  #negotiate(prepare) {
    const round = async () => {
      const makeMessage = prepare();
      try {
        await this.pc.setLocalDescription(await this.pc.createOffer());
        const answered = new Promise((resolve, reject) => {
          this.#pendingAnswer = { resolve, reject };
          setTimeout(() => reject(new Error("the server did not answer our offer")), ANSWER_TIMEOUT_MS);
        });
        this.#signaling.send(makeMessage(this.pc.localDescription.sdp));
        const answer = await answered;
        await this.pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
        return answer;
      } catch (err) {
        this.#pendingAnswer = null;
        if (this.pc.signalingState === "have-local-offer") {
          await this.pc.setLocalDescription({ type: "rollback" }).catch(() => {});
        }
        throw err;
      }
    };
    const result = this.#queue.then(round);
    this.#queue = result.catch(() => {});
    return result;
  }

  /** Ends this connection. `stopTracks` false keeps the camera, microphone and screen running: a call
   * that reconnects publishes them again on its next connection. */
  close(stopTracks = true) {
    if (stopTracks) for (const entry of this.published.values()) entry.track?.stop();
    this.#settleAnswer(null, new Error("the connection closed"));
    this.published.clear();
    this.pc.close();
  }
}
