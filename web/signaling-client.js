// One WebSocket to the server, speaking docs/signaling.md: join, then JSON messages by `type`.

export class SignalingError extends Error {
  constructor(message) {
    super(message.message || message.code);
    this.code = message.code;
    this.ref = message.ref;
  }
}

export function signalingUrl(room) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/v1/rooms/${encodeURIComponent(room)}/ws`;
}

export class SignalingClient {
  #ws = null;
  #handlers = new Map();
  #leaving = false;

  constructor(url) {
    this.url = url;
  }

  /** Registers a handler for one server message type (or "close" for the socket closing). */
  on(type, handler) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, []);
    this.#handlers.get(type).push(handler);
  }

  #emit(type, message) {
    for (const handler of this.#handlers.get(type) || []) {
      try {
        handler(message);
      } catch (err) {
        console.error(`handler for ${type} failed`, err);
      }
    }
  }

  /** Opens the socket and joins; resolves with the `joined` message. */
  connect(token) {
    return new Promise((resolve, reject) => {
      let joined = false;
      const ws = new WebSocket(this.url);
      this.#ws = ws;
      ws.onopen = () => this.send({ type: "join", token });
      ws.onmessage = (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return console.warn("ignoring a non-JSON frame", event.data);
        }
        if (!joined && message.type === "joined") {
          joined = true;
          resolve(message);
        } else if (!joined && message.type === "error") {
          reject(new SignalingError(message));
        }
        this.#emit(message.type, message);
      };
      ws.onclose = (event) => {
        if (!joined) reject(new Error(`could not join (socket closed, code ${event.code})`));
        this.#emit("close", { code: event.code, reason: event.reason, byUs: this.#leaving });
      };
    });
  }

  send(message) {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(message));
  }

  /** Says goodbye politely; the server closes the socket after `leave`. */
  leave() {
    this.#leaving = true;
    this.send({ type: "leave" });
    // If the server does not close it soon, close it ourselves.
    setTimeout(() => this.#ws?.close(), 1000);
  }
}
