// The signed-in person (the session cookie from /signin): whether there is one, who it is, and the REST calls
// pages make as them. The cookie is HttpOnly: pages ask /v1/auth/session (200 either way, so a visitor who is
// not signed in sees no error) and then /v1/me, whose answer carries the CSRF token every write sends.
import { rememberToken } from "/static/api.js";

/** An error with the server's stable code and the HTTP status, for errorText(). */
function refusal(response, body) {
  return Object.assign(new Error(body?.error?.message || `the server refused (${response.status})`),
    { code: body?.error?.code, status: response.status, details: body?.error?.details });
}

/** The signed-in person ({login, name, role, permissions, csrf, …} from /v1/me), or null. */
export async function currentPerson() {
  try {
    const probe = await fetch("/v1/auth/session", { credentials: "same-origin", cache: "no-store" });
    if (!probe.ok || !(await probe.json()).signed_in) return null;
    const me = await fetch("/v1/me", { credentials: "same-origin", cache: "no-store" });
    const body = me.ok ? await me.json() : null;
    return body?.login && body?.csrf ? body : null;
  } catch {
    return null; // the server is unreachable: the page shows what it shows to visitors
  }
}

/** A JSON call with the session cookie; writes carry the CSRF token. Throws the server's refusal. */
export async function call(person, method, path, body) {
  const headers = {};
  if (method !== "GET") headers["X-CSRF-Token"] = person.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const parsed = await response.json().catch(() => ({}));
  if (!response.ok) throw refusal(response, parsed);
  return parsed;
}

/** A meeting token for the person's own login and name, in the answer's body (never in a link). */
export function joinAsMember(person, room) {
  return call(person, "POST", `/v1/rooms/${encodeURIComponent(room)}/join-as-member`);
}

/** For the meeting page opened from a bare link (`/r/{room}`): the signed-in person's own meeting token, kept
 * for this tab like a link's; null for visitors (they get the guest form), or when the server refuses (then
 * the guest form says what a guest may do). */
export async function memberToken(room) {
  const person = await currentPerson();
  if (!person) return null;
  try {
    const { token } = await joinAsMember(person, room);
    rememberToken(room, token);
    return token;
  } catch (err) {
    console.info("joining as a member was refused:", err.code || err.message);
    return null;
  }
}

export async function signOut() {
  await fetch("/v1/auth/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
}

// Names only the organisation's permission table lists (a server without it lists none of them).
const TABLE_ONLY = ["start_meeting", "invite_guests", "upload_files", "read_audit", "manage_integrations"];

/** Whether the person holds a permission (/v1/me lists them by name). A server that does not know the table
 * yet is not second-guessed: it refuses what it refuses, and the page says so. */
export function holds(person, permission) {
  const names = Array.isArray(person?.permissions) ? person.permissions : [];
  if (!names.some((name) => TABLE_ONLY.includes(name))) return true;
  return names.includes(permission);
}

export const isAdmin = (person) => person?.role === "admin" || person?.role === "owner";
