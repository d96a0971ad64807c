// The record tokens this browser keeps: one per meeting, for the meeting page (/m/{id}) and its "my meetings"
// list. A record token reads one meeting's transcript and notes for 30 days and reaches nothing else; it is kept
// in localStorage (the page is opened again days later, in another tab) and never put in a URL.
import { readTokenClaims } from "/static/api.js";

const KEY = "convene.records";

function load() {
  try {
    const kept = JSON.parse(localStorage.getItem(KEY) || "{}");
    return kept && typeof kept === "object" ? kept : {};
  } catch {
    return {};
  }
}

function save(kept) {
  localStorage.setItem(KEY, JSON.stringify(kept));
}

function expired(token) {
  const exp = readTokenClaims(token)?.exp;
  return typeof exp !== "number" || exp * 1000 < Date.now();
}

/** Keeps `token` for meeting `meetingId` (a later one replaces an earlier one). */
export function keepRecordToken(meetingId, token) {
  if (!meetingId || !token) return;
  const kept = load();
  kept[meetingId] = token;
  save(kept);
}

/** The kept record token of one meeting, or null (an expired one is dropped). */
export function recordToken(meetingId) {
  const token = load()[meetingId];
  if (!token) return null;
  if (expired(token)) {
    forgetRecordToken(meetingId);
    return null;
  }
  return token;
}

/** Every kept, unexpired record token: [[meetingId, token], …]. */
export function recordTokens() {
  return Object.keys(load()).map((id) => [id, recordToken(id)]).filter(([, token]) => token);
}

export function forgetRecordToken(meetingId) {
  const kept = load();
  delete kept[meetingId];
  save(kept);
}

/** The meeting page's path for a meeting (no credential in it). */
export function recordPath(meetingId) {
  return `/m/${encodeURIComponent(meetingId)}`;
}
