// One WebSocket to the server, speaking docs/signaling.md: join, then JSON messages by `type`.
// One client per connection: a call that reconnects makes a new one and abandons the old.

const KEEPALIVE_MS = 5000;
// A ping that nothing at all (not even its pong) follows for this long: the path is dead even if TCP has
// not noticed. Counted from the ping, not from the last message: a hidden tab's timers may be throttled.
const SILENCE_LIMIT_MS = 15000;
export const CLOSE_SILENT = 4900; // our own code for "the server stopped answering"

export class SignalingError extends Error {
  constructor(message) {
    super(message.message || message.code);
    this.code = message.code;
    this.ref = message.ref;
  }
}

/** A join that ended with the socket closing: the close code and reason say why (4401, 4403…). */
export class SocketClosedError extends Error {
  constructor(code, reason) {
    super(`could not join (socket closed, code ${code}${reason ? `, ${reason}` : ""})`);
    this.closeCode = code;
    this.closeReason = reason;
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
  #abandoned = false;
  #keepalive = null;
  #waitingSince = 0; // when the oldest ping nothing has followed yet was sent

  constructor(url) {
    this.url = url;
    this.closed = false;
  }

  /** Registers a handler for one server message type (or "close" for the socket closing). */
  on(type, handler) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, []);
    this.#handlers.get(type).push(handler);
  }

  #emit(type, message) {
    if (this.#abandoned) return;
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
        this.#waitingSince = 0;
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return console.warn("ignoring a non-JSON frame", event.data);
        }
        if (!joined && message.type === "joined") {
          joined = true;
          this.#startKeepalive();
          resolve(message);
        } else if (!joined && message.type === "error") {
          reject(new SignalingError(message));
        }
        this.#emit(message.type, message);
      };
      ws.onclose = (event) => {
        if (!joined) reject(new SocketClosedError(event.code, event.reason));
        this.#closed(event.code, event.reason);
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

  /** Drops this connection without a word to anyone: its handlers hear nothing more (the call has
   * moved on to a new connection, or is reconnecting). */
  abandon() {
    this.#abandoned = true;
    this.#stopKeepalive();
    const ws = this.#ws;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "reconnecting");
  }

  #closed(code, reason) {
    if (this.closed) return;
    this.closed = true;
    this.#stopKeepalive();
    this.#emit("close", { code, reason, byUs: this.#leaving });
  }

  /** Pings now and then; a socket that stays silent is given up at once (a dead TCP path may take
   * minutes to close by itself). */
  #startKeepalive() {
    this.#keepalive = setInterval(() => {
      if (this.#waitingSince && Date.now() - this.#waitingSince > SILENCE_LIMIT_MS) {
        const ws = this.#ws;
        ws.onclose = null;
        ws.close();
        this.#closed(CLOSE_SILENT, "the server stopped answering");
        return;
      }
      this.send({ type: "ping" });
      if (!this.#waitingSince) this.#waitingSince = Date.now();
    }, KEEPALIVE_MS);
  }

  #stopKeepalive() {
    clearInterval(this.#keepalive);
    this.#keepalive = null;
  }
}
