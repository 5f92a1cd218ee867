// Entry point of the reference page: loads the content bundle into sections
// and wires the chat box. Modules under js/ hold the parts.

import { ApiError, fetchBundle } from "./js/api.js";
import { ChatBox } from "./js/chat.js";
import { apiBase } from "./js/config.js";
import { ownerName, renderBundle } from "./js/content.js";

const byId = (id) => document.getElementById(id);

function describeContentError(error) {
  if (!(error instanceof ApiError)) {
    return "The portfolio could not be shown.";
  }
  switch (error.code) {
    case "RATE_LIMIT_EXCEEDED":
      return `Too many requests from your network. Please try again in ${error.retryAfter ?? 1} s.`;
    case "NETWORK_ERROR":
      return "Could not load the portfolio: the server is unreachable or does not allow this site to read it.";
    case "SERVICE_UNAVAILABLE":
    case "REQUEST_TIMEOUT":
      return "The portfolio is unavailable right now. Please try again in a moment.";
    default:
      return `Could not load the portfolio: ${error.message}`;
  }
}

async function loadContent(base) {
  const status = byId("content-status");
  const statusText = byId("content-status-text");
  const retry = byId("content-retry");
  const sections = byId("sections");

  status.dataset.state = "loading";
  statusText.textContent = "Loading the portfolio…";
  retry.hidden = true;
  sections.setAttribute("aria-busy", "true");
  try {
    const bundle = await fetchBundle(base);
    const types = renderBundle(bundle, sections, byId("section-nav"));
    const name = ownerName(bundle);
    if (name) {
      byId("site-name").textContent = name;
      document.title = `${name} · Portfolio`;
    }
    status.dataset.state = "ready";
    statusText.textContent = types.length > 0 ? "" : "Nothing has been published yet.";
  } catch (error) {
    status.dataset.state = "error";
    statusText.textContent = describeContentError(error);
    retry.hidden = false;
  } finally {
    sections.setAttribute("aria-busy", "false");
  }
}

function main() {
  let base;
  try {
    base = apiBase();
  } catch (error) {
    byId("content-status-text").textContent = `This page is misconfigured: ${error.message}`;
    return;
  }
  document.documentElement.dataset.apiOrigin = base || window.location.origin;

  byId("content-retry").addEventListener("click", () => loadContent(base));
  loadContent(base);

  new ChatBox({
    apiBase: base,
    form: byId("chat-form"),
    input: byId("chat-input"),
    send: byId("chat-send"),
    stop: byId("chat-stop"),
    log: byId("chat-log"),
    error: byId("chat-error"),
  });
}

main();
