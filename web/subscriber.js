// The subscriber connection: the server offers, we answer. It carries everything we receive.
// Its m-lines are slots: each server offer, and each `tracks` message in between, comes with a table
// mid → {track_id, participant_id, kind, source} saying what every slot carries now (a slot moves to
// another speaker's voice or another camera without renegotiation). We map incoming media by
// transceiver.mid through it (never by stream ids, which are the server's business).

export class Subscriber {
  #signaling;
  #queue = Promise.resolve();

  /** onChange(remoteTracks) runs after every applied offer. */
  constructor(signaling, iceServers, onChange) {
    this.#signaling = signaling;
    this.onChange = onChange;
    this.table = {};
    this.pc = new RTCPeerConnection({ iceServers });
    this.pc.onicecandidate = ({ candidate }) =>
      signaling.send({ type: "candidate", target: "subscriber", candidate: candidate ? candidate.toJSON() : null });
    signaling.on("offer", (message) => {
      if (message.target !== "subscriber") return;
      // Offers are applied strictly in order: each answer must match the offer it answers.
      this.#queue = this.#queue.then(() => this.#applyOffer(message)).catch((err) => console.error("subscriber offer", err));
    });
    signaling.on("tracks", (message) => {
      // In order with the offers: a table may name a slot the offer before it created.
      this.#queue = this.#queue.then(() => {
        this.table = message.tracks || {};
        this.onChange(this.remoteTracks());
      });
    });
  }

  async #applyOffer(message) {
    await this.pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    this.#signaling.send({ type: "answer", target: "subscriber", sdp: this.pc.localDescription.sdp });
    this.table = message.tracks || {};
    this.onChange(this.remoteTracks());
  }

  /** What we receive now: [{mid, track (MediaStreamTrack), track_id, participant_id, kind, source}]. */
  remoteTracks() {
    const tracks = [];
    for (const transceiver of this.pc.getTransceivers()) {
      const info = transceiver.mid !== null ? this.table[transceiver.mid] : undefined;
      if (!info || transceiver.currentDirection === "stopped") continue;
      tracks.push({ mid: transceiver.mid, track: transceiver.receiver.track, ...info });
    }
    return tracks;
  }

  addRemoteCandidate(candidate) {
    return this.pc.addIceCandidate(candidate || null).catch((err) => console.warn("subscriber candidate", err));
  }

  /** Per received track: what getStats says about it, labelled with who and what it is. */
  async stats() {
    const midByTrackId = new Map();
    for (const transceiver of this.pc.getTransceivers()) midByTrackId.set(transceiver.receiver.track.id, transceiver.mid);
    const report = await this.pc.getStats();
    const result = [];
    report.forEach((stat) => {
      if (stat.type !== "inbound-rtp") return;
      const mid = stat.mid ?? midByTrackId.get(stat.trackIdentifier);
      const info = this.table[mid];
      if (!info) return;
      result.push({
        mid,
        participant_id: info.participant_id,
        track_id: info.track_id,
        kind: stat.kind,
        source: info.source,
        bytesReceived: stat.bytesReceived ?? 0,
        packetsReceived: stat.packetsReceived ?? 0,
        framesDecoded: stat.framesDecoded,
        frameWidth: stat.frameWidth,
        frameHeight: stat.frameHeight,
        totalSamplesReceived: stat.totalSamplesReceived,
        totalAudioEnergy: stat.totalAudioEnergy,
        // When this track's current sample plays, in the sender's NTP time (ms): a person's audio and video
        // agree when Chromium synchronises them (see sfu/webrtc.py, slot pairs).
        estimatedPlayoutTimestamp: stat.estimatedPlayoutTimestamp,
        jitterBufferDelay: stat.jitterBufferDelay,
        jitterBufferEmittedCount: stat.jitterBufferEmittedCount,
      });
    });
    return result;
  }

  close() {
    this.pc.close();
  }
}
