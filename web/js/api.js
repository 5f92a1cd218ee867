// The two gateway calls the page makes, and the error they fail with.
//
// Every error body of the gateway is {"error": {code, message, requestId,
// fields?, retryAfter?}}; ApiError carries those fields so the interface can
// word its own message. Retry-After is read from the body, because a
// cross-origin page cannot read that header (the gateway does not expose it).

import { readServerSentEvents } from "./sse.js";

export class ApiError extends Error {
  /**
   * @param {object} details
   * @param {number} details.status HTTP status; 0 when no response arrived.
   * @param {string} details.code Error code of the HTTP contract, or NETWORK_ERROR / STREAM_CUT.
   */
  constructor({ status, code, message, requestId = null, retryAfter = null, fields = {} }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
    this.fields = fields;
  }
}

function toSeconds(value) {
  const seconds = Number.parseInt(value, 10);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

function errorFromBody(status, body, requestId) {
  const error = body && typeof body === "object" ? (body.error ?? body) : {};
  return new ApiError({
    status,
    code: typeof error.code === "string" ? error.code : `HTTP_${status}`,
    message: typeof error.message === "string" ? error.message : `HTTP ${status}`,
    requestId: error.requestId ?? requestId,
    retryAfter: toSeconds(error.retryAfter),
    fields: error.fields ?? {},
  });
}

async function errorFromResponse(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // A proxy's HTML error page, say: the status alone has to do.
  }
  return errorFromBody(response.status, body, response.headers.get("X-Request-Id"));
}

async function send(url, init) {
  try {
    return await fetch(url, { credentials: "omit", ...init });
  } catch (cause) {
    if (cause.name === "AbortError") {
      throw cause;
    }
    // fetch() rejects the same way for a refused connection and for a
    // response that CORS does not let this origin read.
    throw new ApiError({ status: 0, code: "NETWORK_ERROR", message: String(cause.message || cause) });
  }
}

/** GET /api/v1/content/bundle: published content grouped by type, in display order. */
export async function fetchBundle(base, { signal } = {}) {
  const response = await send(`${base}/api/v1/content/bundle`, {
    headers: { Accept: "application/json" },
    signal,
  });
  if (!response.ok) {
    throw await errorFromResponse(response);
  }
  const body = await response.json();
  return body.data ?? {};
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * POST /api/v1/chat as a Server-Sent Events stream.
 *
 * Calls `onToken(text)` for each `token` event as it arrives and resolves with
 * the reply of the `done` event (the object the JSON endpoint returns:
 * sessionId, message, tokensUsed). Rejects with an ApiError for an error
 * status, an `error` event, or a stream that ends before `done`. A gateway
 * that answers with JSON instead of a stream is accepted too.
 */
export async function sendChat(base, payload, { onToken, signal } = {}) {
  const response = await send(`${base}/api/v1/chat`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(payload),
    cache: "no-store",
    signal,
  });
  if (!response.ok) {
    throw await errorFromResponse(response);
  }
  const requestId = response.headers.get("X-Request-Id");
  const contentType = response.headers.get("Content-Type") || "";
  if (!contentType.startsWith("text/event-stream")) {
    return response.json();
  }

  for await (const { event, data } of readServerSentEvents(response.body)) {
    const parsed = parseJson(data);
    if (event === "token") {
      onToken?.(typeof parsed?.text === "string" ? parsed.text : "");
    } else if (event === "done") {
      return parsed && "data" in parsed && !("message" in parsed) ? parsed.data : parsed;
    } else if (event === "error") {
      throw errorFromBody(response.status, parsed, requestId);
    }
  }
  throw new ApiError({
    status: response.status,
    code: "STREAM_CUT",
    message: "The answer stream ended before it was complete.",
    requestId,
  });
}
