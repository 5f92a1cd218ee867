// Page configuration: the API base URL, and the ids sent with chat messages.
//
// The API base is the `data-api-base` attribute of <html>: empty means the page's
// own origin (the gateway serves the page under /app/). A copy of the page on
// another origin sets it to the gateway's URL; that origin must be listed in
// the gateway's CORS_ORIGINS. There is no query-parameter override on purpose:
// a link could otherwise point the page at someone else's API.

const VISITOR_KEY = "portfolio.visitorId";
const SESSION_KEY = "portfolio.chatSessionId";

/** Return the API base URL without a trailing slash, or "" for the page's own origin. */
export function apiBase(root = document.documentElement, location = window.location) {
  const raw = (root.dataset.apiBase || "").trim();
  if (raw === "") {
    return "";
  }
  const url = new URL(raw, location.href);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`data-api-base must be an http(s) URL, not ${url.protocol}`);
  }
  return url.href.replace(/\/+$/, "");
}

function randomId() {
  if (typeof crypto.randomUUID === "function") {
    return crypto.randomUUID();
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function readStorage(storage, key) {
  try {
    return storage.getItem(key);
  } catch {
    return null;
  }
}

function writeStorage(storage, key, value) {
  try {
    if (value === null) {
      storage.removeItem(key);
    } else {
      storage.setItem(key, value);
    }
  } catch {
    // Storage can be disabled; the page then keeps the ids for this load only.
  }
}

let memoryVisitorId = null;

/** Return this browser's random visitor id, kept in localStorage so sessions can continue. */
export function visitorId() {
  const stored = readStorage(window.localStorage, VISITOR_KEY);
  if (stored) {
    return stored;
  }
  memoryVisitorId ??= `web-${randomId()}`;
  writeStorage(window.localStorage, VISITOR_KEY, memoryVisitorId);
  return memoryVisitorId;
}

/** Return the chat session this tab continues, or null before the first answer. */
export function chatSessionId() {
  return readStorage(window.sessionStorage, SESSION_KEY);
}

export function rememberChatSession(sessionId) {
  writeStorage(window.sessionStorage, SESSION_KEY, sessionId);
}
