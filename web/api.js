// The few REST calls the browser makes (everything else goes over the signaling WebSocket).

export const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A readable random room name like "kqz-ftwm-pxa", so "just start a meeting" needs no typing. */
export function randomRoomName() {
  const letters = "abcdefghijkmnopqrstuvwxyz";
  const pick = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => letters[b % letters.length]).join("");
  return `${pick(3)}-${pick(4)}-${pick(3)}`;
}

/** Asks the server for a guest token: opens the room if it is new (and makes us its moderator). */
export async function joinRoom(room, name) {
  const response = await fetch(`/v1/rooms/${encodeURIComponent(room)}/join`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    // The stable code and status travel with the error, so the page can word it in the reader's language.
    throw Object.assign(new Error(body?.error?.message || `the server refused (${response.status})`),
      { code: body?.error?.code, status: response.status });
  }
  return body; // {token, url, moderator}
}

/** The meeting page's address for a token. Built from our own origin: the server's idea of its URL
 * can be wrong behind a proxy. The token goes in the fragment, which browsers never send to a server
 * (so it stays out of access logs and proxies). */
export function meetingPath(room, token) {
  const fragment = token ? `#token=${encodeURIComponent(token)}` : "";
  return `/r/${encodeURIComponent(room)}${fragment}`;
}

const tokenKey = (room) => `convene.token.${room}`;

/** This tab's token for `room`: from the link (`#token=…`, or a legacy `?token=…`), else the one kept
 * from before a reload. The link's token is kept in sessionStorage and wiped from the address bar, so it
 * is neither in history nor shown on a shared screen. */
export function takeToken(room) {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const fromLink = fragment.get("token") || query.get("token");
  if (fromLink) rememberToken(room, fromLink);
  if (fragment.has("token") || query.has("token")) {
    query.delete("token");
    const rest = query.toString();
    history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : ""));
  }
  const kept = sessionStorage.getItem(tokenKey(room));
  // An expired one would only fail the join: a bare invite link then asks for a name again.
  const exp = kept ? readTokenClaims(kept)?.exp : undefined;
  if (kept && typeof exp === "number" && exp * 1000 < Date.now()) {
    sessionStorage.removeItem(tokenKey(room));
    return null;
  }
  return kept;
}

/** Keeps the token for this tab, so a reload rejoins as the same person. */
export function rememberToken(room, token) {
  sessionStorage.setItem(tokenKey(room), token);
}

/** Reads a JWT's claims without verifying them: only to show the name before joining. */
export function readTokenClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0)));
    return JSON.parse(json);
  } catch {
    return null;
  }
}
