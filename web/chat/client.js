// Convene chat client: REST calls and the live socket (per-connection seq, resume, then /v1/sync).
// Events: "event" (detail = server event), "sync" (detail = {updated, deleted}), "status" (detail = text).

export class ChatError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code || "http_error";
  }
}

export class ChatClient extends EventTarget {
  // `token` null: the page is signed in by the session cookie; writes then send `csrf` (from /v1/me).
  constructor(token, base = "", csrf = null) {
    super();
    this.token = token;
    this.csrf = csrf;
    this.base = base;
    this.session = null;
    this.lastSeq = 0;
    this.cursor = null;
    this.ws = null;
    this.closed = false;
    this.backoff = 500;
  }

  async api(method, path, body) {
    const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
    if (!this.token && this.csrf && method !== "GET") headers["X-CSRF-Token"] = this.csrf;
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const resp = await fetch(this.base + path, { method, headers, body: payload, credentials: "same-origin" });
    const data = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
    if (!resp.ok) throw new ChatError(resp.status, data);
    return data;
  }

  /** A link that opens one file for a few minutes: no credential in it (it is logged and kept in history). */
  async fileLink(fileId) {
    const { url } = await this.api("POST", `/v1/files/${encodeURIComponent(fileId)}/link`);
    return new URL(this.base + url, location.href).href;
  }

  /** Downloads a file (saved under `name`) through a fresh signed link. */
  async download(fileId, name) {
    const a = document.createElement("a");
    a.href = await this.fileLink(fileId);
    a.download = name || "";
    a.rel = "noopener";
    document.body.append(a);
    a.click();
    a.remove();
  }

  connect() {
    if (this.closed) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const origin = this.base ? this.base.replace(/^http/, "ws") : `${proto}//${location.host}`;
    // The credential travels in the first frame, never in the URL (URLs end up in access logs).
    const ws = new WebSocket(`${origin}/v1/chat/ws`);
    this.ws = ws;
    ws.onopen = () => {
      const auth = this.token ? { type: "auth", token: this.token } : { type: "auth", cookie: true };
      if (this.session) Object.assign(auth, { session: this.session, last_seq: this.lastSeq });
      ws.send(JSON.stringify(auth));
    };
    ws.onmessage = (e) => this._onFrame(JSON.parse(e.data));
    ws.onclose = (e) => {
      if (this.ws !== ws || this.closed) return;
      if (e.code === 4401 || e.code === 4410) {
        // Refused credential: retrying with the same one cannot help.
        this._status("signed out: open your link again");
        return;
      }
      this._status("reconnecting…");
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  async _onFrame(frame) {
    if (frame.type === "hello") {
      const hadSession = this.session !== null;
      this.session = frame.session;
      this.lastSeq = frame.last_seq;
      this.backoff = 500;
      if (hadSession && !frame.resumed && this.cursor !== null) await this.catchUp();
      if (this.cursor === null) this.cursor = frame.cursor;
      this._status("live");
      return;
    }
    if (typeof frame.seq === "number") this.lastSeq = frame.seq;
    if (frame.cursor && (this.cursor === null || Number(frame.cursor) > Number(this.cursor))) this.cursor = String(frame.cursor);
    this.dispatchEvent(new CustomEvent("event", { detail: frame }));
  }

  async catchUp() {
    let more = true;
    while (more) {
      let page;
      try {
        page = await this.api("GET", `/v1/sync?since=${this.cursor}`);
      } catch (err) {
        // A meeting token reaches only its meeting's channel, not /v1/sync: its panel reloads that channel.
        if (err.status !== 403) throw err;
        this.dispatchEvent(new CustomEvent("resync"));
        return;
      }
      this.cursor = page.next;
      more = page.has_more;
      this.dispatchEvent(new CustomEvent("sync", { detail: page }));
    }
  }

  typing(channelId) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "typing", channel: channelId }));
  }

  _status(text) {
    this.dispatchEvent(new CustomEvent("status", { detail: text }));
  }

  close() {
    this.closed = true;
    this.ws?.close();
  }
}
