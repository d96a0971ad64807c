// The few REST calls the browser makes (everything else goes over the signaling WebSocket).

export const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Asks the server for a guest token: opens the room if it is new (and makes us its moderator). */
export async function joinRoom(room, name) {
  const response = await fetch(`/v1/rooms/${encodeURIComponent(room)}/join`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body?.error?.message || `the server refused (${response.status})`);
  }
  return body; // {token, url, moderator}
}

/** The meeting page's address for a token. Built from our own origin: the server's idea of its URL
 * can be wrong behind a proxy. */
export function meetingPath(room, token) {
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  return `/r/${encodeURIComponent(room)}${query}`;
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
