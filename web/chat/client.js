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
  constructor(token, base = "") {
    super();
    this.token = token;
    this.base = base;
    this.session = null;
    this.lastSeq = 0;
    this.cursor = null;
    this.ws = null;
    this.closed = false;
    this.backoff = 500;
  }

  async api(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}` };
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const resp = await fetch(this.base + path, { method, headers, body: payload });
    const data = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
    if (!resp.ok) throw new ChatError(resp.status, data);
    return data;
  }

  fileUrl(fileId) {
    return `${this.base}/v1/files/${encodeURIComponent(fileId)}?token=${encodeURIComponent(this.token)}`;
  }

  connect() {
    if (this.closed) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const origin = this.base ? this.base.replace(/^http/, "ws") : `${proto}//${location.host}`;
    let url = `${origin}/v1/chat/ws?token=${encodeURIComponent(this.token)}`;
    if (this.session) url += `&session=${this.session}&last_seq=${this.lastSeq}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (e) => this._onFrame(JSON.parse(e.data));
    ws.onclose = () => {
      if (this.ws !== ws || this.closed) return;
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
      const page = await this.api("GET", `/v1/sync?since=${this.cursor}`);
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
