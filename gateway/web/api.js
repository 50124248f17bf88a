// Talking to the service: the API key kept in this browser, errors in words, and the event
// stream read through fetch (EventSource cannot send an Authorization header).

const KEY_STORE = "stt-api-key";

export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function savedKey() {
  return localStorage.getItem(KEY_STORE);
}

export function saveKey(key) {
  localStorage.setItem(KEY_STORE, key);
}

function withKey(headers = {}) {
  const key = savedKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
}

export async function call(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: withKey(options.headers) });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The service cannot be reached. Check the connection, or that the service is running.");
  }
  if (response.status === 401) {
    throw new Unauthorized(savedKey() ? "This API key was refused. Enter a valid one." : "This service asks for an API key.");
  }
  if (!response.ok) throw new ApiError(response.status, await messageOf(response));
  return response;
}

async function messageOf(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((problem) => problem.msg).join("; ");
    if (body.error?.message) return body.error.message;
  } catch {
    // not JSON: fall through to the status
  }
  if (response.status >= 500) return "The service had a problem; try again in a moment.";
  return `The service refused the request (${response.status}).`;
}

// Yields {event, data} for each server-sent event of the job, until the stream ends.
export async function* jobEvents(jobId, signal) {
  const response = await call(`/v1/jobs/${jobId}/events`, { signal, headers: { Accept: "text/event-stream" } });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}
