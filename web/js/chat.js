// The chat box: sends a question, streams the answer into the conversation
// log token by token, and words every failure as a message a visitor can act on.

import { ApiError, sendChat } from "./api.js";
import { chatSessionId, rememberChatSession, visitorId } from "./config.js";

const MAX_MESSAGE_LENGTH = 2000;

function seconds(count) {
  return count === 1 ? "1 second" : `${count} seconds`;
}

/** Return the sentence shown for a failed chat request, chosen by error code. */
export function describeChatError(error) {
  if (!(error instanceof ApiError)) {
    return "Something went wrong while sending your message. Please try again.";
  }
  switch (error.code) {
    case "RATE_LIMIT_EXCEEDED":
      return error.retryAfter
        ? `You are sending messages too quickly. Please wait ${seconds(error.retryAfter)} and try again.`
        : "You are sending messages too quickly. Please wait a moment and try again.";
    case "LLM_ERROR":
      return error.retryAfter
        ? `The AI assistant is unavailable right now. Please try again in ${seconds(error.retryAfter)}.`
        : "The AI assistant is unavailable right now. Please try again in a minute.";
    case "VALIDATION_ERROR": {
      const problems = Object.values(error.fields ?? {}).flat();
      return problems.length > 0 ? `Your message was not accepted: ${problems.join("; ")}.` : error.message;
    }
    case "SERVICE_UNAVAILABLE":
      return "The chat is unavailable right now. Please try again later.";
    case "REQUEST_TIMEOUT":
      return "The answer took too long. Please try again.";
    case "NETWORK_ERROR":
      return "Could not reach the server. Check your connection and try again.";
    case "STREAM_CUT":
      return "The answer was cut off. Please try again.";
    default:
      return error.message || "Something went wrong. Please try again.";
  }
}

export class ChatBox {
  /**
   * @param {object} parts
   * @param {string} parts.apiBase API base URL ("" for the page's own origin).
   */
  constructor({ apiBase, form, input, send, stop, log, error }) {
    this.apiBase = apiBase;
    this.form = form;
    this.input = input;
    this.sendButton = send;
    this.stopButton = stop;
    this.log = log;
    this.error = error;
    this.controller = null;
    this.cooldownTimer = null;

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        // requestSubmit() ignores a disabled Send button, so check it here.
        if (!this.sendButton.disabled) {
          form.requestSubmit();
        }
      }
    });
    stop.addEventListener("click", () => this.controller?.abort());
  }

  showError(text, requestId) {
    this.error.replaceChildren(text);
    if (requestId) {
      const reference = document.createElement("span");
      reference.className = "chat__reference";
      reference.textContent = ` (reference ${requestId})`;
      this.error.append(reference);
    }
    this.error.hidden = false;
  }

  clearError() {
    this.error.hidden = true;
    this.error.replaceChildren();
  }

  addMessage(role, text) {
    const entry = document.createElement("li");
    entry.className = `chat__message chat__message--${role}`;
    const author = document.createElement("p");
    author.className = "chat__who";
    author.textContent = role === "user" ? "You" : "Assistant";
    const body = document.createElement("p");
    body.className = "chat__text";
    body.textContent = text;
    entry.append(author, body);
    this.log.append(entry);
    entry.scrollIntoView({ block: "nearest" });
    return { entry, body };
  }

  setBusy(busy) {
    if (!busy && document.activeElement === this.stopButton) {
      // Stop is about to be hidden: keep the keyboard focus in the form.
      this.input.focus();
    }
    this.sendButton.disabled = busy;
    this.stopButton.hidden = !busy;
    this.form.setAttribute("aria-busy", String(busy));
  }

  /** Keep Send disabled for `retryAfter` seconds after a 429. */
  coolDown(retryAfter) {
    clearTimeout(this.cooldownTimer);
    this.sendButton.disabled = true;
    this.cooldownTimer = setTimeout(() => {
      this.sendButton.disabled = false;
    }, retryAfter * 1000);
  }

  async submit() {
    const message = this.input.value;
    if (message.trim() === "") {
      this.showError("Please type a question first.");
      this.input.focus();
      return;
    }
    if (message.length > MAX_MESSAGE_LENGTH) {
      this.showError(`Your message is too long: at most ${MAX_MESSAGE_LENGTH} characters.`);
      return;
    }
    if (this.controller) {
      return;
    }

    this.clearError();
    this.addMessage("user", message);
    this.input.value = "";
    const answer = this.addMessage("assistant", "");
    answer.entry.setAttribute("aria-busy", "true");
    answer.entry.classList.add("chat__message--streaming");
    this.controller = new AbortController();
    this.setBusy(true);

    let streamed = "";
    let cooldown = 0;
    try {
      const reply = await this.ask(message, (text) => {
        streamed += text;
        answer.body.textContent = streamed;
      });
      // The final reply is authoritative: the service may have redacted text
      // that was already streamed.
      answer.body.textContent = reply?.message?.content ?? streamed;
      if (typeof reply?.sessionId === "string") {
        rememberChatSession(reply.sessionId);
      }
    } catch (error) {
      if (error.name === "AbortError") {
        answer.body.textContent = streamed ? `${streamed} …` : "Stopped before the answer began.";
        answer.entry.classList.add("chat__message--stopped");
      } else {
        if (streamed) {
          answer.entry.classList.add("chat__message--failed");
        } else {
          answer.entry.remove();
          // Offer the unanswered question again.
          this.input.value ||= message;
        }
        this.showError(describeChatError(error), error.requestId);
        if (error.code === "RATE_LIMIT_EXCEEDED") {
          cooldown = error.retryAfter ?? 1;
        }
      }
    } finally {
      answer.entry.removeAttribute("aria-busy");
      answer.entry.classList.remove("chat__message--streaming");
      this.controller = null;
      this.setBusy(false);
    }
    if (cooldown > 0) {
      this.coolDown(cooldown);
    }
  }

  /** Send one message, continuing this tab's session; a stale session starts a new one. */
  async ask(message, onToken) {
    const payload = { message, visitorId: visitorId() };
    const sessionId = chatSessionId();
    if (sessionId) {
      payload.sessionId = sessionId;
    }
    try {
      return await sendChat(this.apiBase, payload, { onToken, signal: this.controller.signal });
    } catch (error) {
      if (sessionId && error instanceof ApiError && error.code === "NOT_FOUND") {
        rememberChatSession(null);
        delete payload.sessionId;
        return sendChat(this.apiBase, payload, { onToken, signal: this.controller.signal });
      }
      throw error;
    }
  }
}
