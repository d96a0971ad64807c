// The one message catalogue of the web client: t(key, params), the language (from the browser's
// languages, or the reader's own choice kept in localStorage), static HTML text by data-i18n, dates and
// times by Intl, and the server's error codes as messages people read.
//
// Static HTML: <h1 data-i18n="landing.heading">…</h1> gets its text; data-i18n-attr="aria-label:language.label;
// title:language.label" sets attributes. Code that builds text itself listens for changes with
// onLanguageChange(fn) and renders again.
import en from "/static/i18n/en.js";
import zhCN from "/static/i18n/zh-CN.js";

const CATALOGUES = { en, "zh-CN": zhCN };
export const LANGUAGES = [
  { code: "en", name: "English" },
  { code: "zh-CN", name: "简体中文" },
];
const STORAGE_KEY = "convene.language";
const CHANGE = "convene:language";

/** The catalogue for a BCP 47 tag: any Chinese → zh-CN (the only Chinese we have), English → en. */
export function matchLanguage(tag) {
  const lower = String(tag || "").toLowerCase();
  if (lower.startsWith("zh")) return "zh-CN";
  if (lower.startsWith("en")) return "en";
  return null;
}

function storedLanguage() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage may be off (privacy settings): the browser's languages still decide
  }
}

/** The stored choice if any, else the first of the browser's languages we have, else English. */
export function preferredLanguage(stored = storedLanguage(), browser = navigator.languages || [navigator.language]) {
  if (stored && CATALOGUES[stored]) return stored;
  for (const tag of browser) {
    const code = matchLanguage(tag);
    if (code) return code;
  }
  return "en";
}

let current = preferredLanguage();
document.documentElement.lang = current;

export function language() {
  return current;
}

/** The text for `key` in the current language, with {params} filled in. */
export function t(key, params = {}) {
  let text = CATALOGUES[current][key] ?? en[key];
  if (text === undefined) {
    console.warn("i18n: no text for", key);
    return key;
  }
  if (typeof text === "object") {
    const form = new Intl.PluralRules(current).select(Number(params.count ?? 0));
    text = text[form] ?? text.other;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** Whether the catalogue has a text for `key` (for optional keys such as known server reasons). */
export function has(key) {
  return key in en;
}

/** A message for an error the server (or fetch) gave: by its stable code where we know it. */
export function errorText(err) {
  const code = err?.code;
  if (code && has(`error.${code}`)) return t(`error.${code}`, { message: err.message || "", code });
  if (err?.message) return err.message;
  if (err?.status) return t("error.http", { status: err.status });
  return t("error.unknown", { code: code || "?" });
}

/** A server-given reason (e.g. why a meeting ended) in the reader's language where we know it. */
export function reasonText(reason) {
  if (!reason) return "";
  return has(`reason.${reason}`) ? t(`reason.${reason}`) : reason;
}

// ---- dates and times

const formats = new Map();
function formatter(options) {
  const key = current + JSON.stringify(options);
  if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat(current, options));
  return formats.get(key);
}

const toDate = (value) => (value instanceof Date ? value : new Date(Number(value) * 1000));

/** "14:05" / "下午2:05": a time of day from epoch seconds or a Date. */
export function formatTime(value) {
  return formatter({ hour: "2-digit", minute: "2-digit" }).format(toDate(value));
}

/** A date and time, e.g. "Mar 5, 2026, 2:05 PM" / "2026年3月5日 14:05". */
export function formatDateTime(value) {
  return formatter({ dateStyle: "medium", timeStyle: "short" }).format(toDate(value));
}

export function formatDate(value) {
  return formatter({ dateStyle: "medium" }).format(toDate(value));
}

// ---- the page

/** Fills every [data-i18n] and [data-i18n-attr] under `root` in the current language. */
export function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

export function setLanguage(code) {
  if (!CATALOGUES[code] || code === current) return;
  current = code;
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    // not kept: this page still switches
  }
  document.documentElement.lang = code;
  translatePage();
  for (const select of document.querySelectorAll("select.lang-select")) select.value = code;
  window.dispatchEvent(new CustomEvent(CHANGE, { detail: code }));
}

/** Calls fn(code) after every language switch; returns a function that stops it. */
export function onLanguageChange(fn) {
  const listener = (event) => fn(event.detail);
  window.addEventListener(CHANGE, listener);
  return () => window.removeEventListener(CHANGE, listener);
}

/** A <select> that switches the language; its options are named in their own language. */
export function languagePicker() {
  const select = document.createElement("select");
  select.className = "lang-select";
  select.dataset.i18nAttr = "aria-label:language.label;title:language.label";
  select.setAttribute("aria-label", t("language.label"));
  select.title = t("language.label");
  for (const { code, name } of LANGUAGES) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = name;
    option.lang = code;
    select.append(option);
  }
  select.value = current;
  select.onchange = () => setLanguage(select.value);
  return select;
}

/** Puts a language picker into every [data-language-picker] and translates the static text. */
export function initPage() {
  for (const slot of document.querySelectorAll("[data-language-picker]")) {
    if (!slot.querySelector("select.lang-select")) slot.append(languagePicker());
  }
  translatePage();
}
