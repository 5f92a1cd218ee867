// Server-Sent Events read from a fetch() response body.
//
// EventSource cannot send a POST body, so the chat reads the stream itself.
// Parsing follows the event-stream rules of the HTML standard. Lines end in
// CRLF, LF or CR. "field: value" lines build an event, and a blank line
// dispatches it. Lines starting with ":" are comments (keep-alives).

/**
 * Yield `{event, data}` for every event in the stream, in order.
 * `event` defaults to "message"; `data` joins multi-line data with "\n".
 */
export async function* readServerSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let eventName = "";
  let dataLines = [];

  function* takeLines(final) {
    // A CR at the very end may be the first half of a CRLF split across chunks.
    const end = !final && buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
    const lines = buffer.slice(0, end).split(/\r\n|\r|\n/);
    buffer = (final ? "" : lines.pop()) + buffer.slice(end);
    yield* lines;
  }

  function* handle(line) {
    if (line === "") {
      if (dataLines.length > 0) {
        yield { event: eventName || "message", data: dataLines.join("\n") };
      }
      eventName = "";
      dataLines = [];
      return;
    }
    if (line.startsWith(":")) {
      return;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) {
      value = value.slice(1);
    }
    if (field === "event") {
      eventName = value;
    } else if (field === "data") {
      dataLines.push(value);
    }
  }

  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      buffer += value;
      for (const line of takeLines(false)) {
        yield* handle(line);
      }
    }
    for (const line of takeLines(true)) {
      yield* handle(line);
    }
  } finally {
    if (!finished) {
      // The reader stopped early (an error, or the caller broke out). Cancelling
      // closes the connection, so the gateway stops the answer.
      await reader.cancel().catch(() => {});
    }
    reader.releaseLock();
  }
}
