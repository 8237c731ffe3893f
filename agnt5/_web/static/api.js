// Requests from agnt5's pages to the API that serves them, and a small DOM builder.
//
// A key, when the server asks for one (401), is typed into a dialog, kept in this tab's
// sessionStorage and sent as an Authorization header: never in a URL or a cookie, so no other
// page can make the browser send it.

const KEY = "agnt5.key";

/** The path the API is served under ("" at the top of the origin). */
export const root = document.documentElement.dataset.root || "";

export class ApiError extends Error {
  constructor(status, body) {
    const document = body && typeof body === "object" ? body : {};
    super(document.error || (typeof body === "string" && body) || `HTTP ${status}`);
    this.status = status;
    this.code = document.code || `HTTP_${status}`;
    this.invocationId = document.invocation_id || null;
  }
}

/**
 * Build an element: h("a", {href: "#/", class: "x", onclick: f}, "text", child, [more]).
 * A style is an object ({width: "10%"}), set through the DOM: the content security policy
 * refuses style attributes.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "style") Object.assign(element.style, value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

export function hasKey() {
  return sessionStorage.getItem(KEY) !== null;
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

function headers(extra) {
  const result = { Accept: "application/json", ...extra };
  const key = sessionStorage.getItem(KEY);
  if (key) result.Authorization = `Bearer ${key}`;
  return result;
}

let asking = null;

/** Ask for a client key (once at a time); resolves when one was given. */
export function askKey(reason) {
  if (asking) return asking;
  const input = h("input", { type: "password", name: "key", autocomplete: "off", required: true });
  const dialog = h(
    "dialog",
    { class: "key-dialog" },
    h(
      "form",
      {
        onsubmit: (event) => {
          event.preventDefault();
          sessionStorage.setItem(KEY, input.value.trim());
          dialog.close();
        },
      },
      h("h2", {}, "Client key"),
      h("p", {}, reason || "This coordinator needs a client key."),
      h("label", {}, "Key ", input),
      h("p", { class: "hint" }, "Kept in this tab only, sent as an Authorization header."),
      h("button", { type: "submit" }, "Use key"),
    ),
  );
  document.body.append(dialog);
  asking = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      dialog.remove();
      asking = null;
      resolve();
    });
  });
  dialog.showModal();
  input.focus();
  return asking;
}

async function parse(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}

/**
 * Call the API: the JSON answer, or an ApiError. With {raw: true}: {status, body} whatever the
 * status; {headers} adds request headers. A 401 asks for a key and tries again.
 */
export async function call(method, path, body, { raw = false, headers: extra = {} } = {}) {
  for (let attempt = 0; ; attempt++) {
    const init = { method, headers: headers(extra), credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    const response = await fetch(root + path, init);
    const data = await parse(response);
    if (response.status === 401 && attempt < 3) {
      await askKey(data && data.error);
      continue;
    }
    if (raw) return { status: response.status, body: data };
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }
}

/** The query string of the non-empty entries of params ("?a=1&b=2", or ""). */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.append(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * Server-sent events from path, read with fetch (so the key goes in a header, which
 * EventSource cannot send): yields {event, data} with data parsed as JSON. Ends when the
 * stream does; throws ApiError when the server refuses it.
 */
export async function* events(path, signal) {
  const response = await fetch(root + path, {
    headers: headers({ Accept: "text/event-stream" }),
    credentials: "omit",
    cache: "no-store",
    signal,
  });
  if (!response.ok) {
    const data = await parse(response);
    if (response.status === 401) await askKey(data && data.error);
    throw new ApiError(response.status, data);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

/** A JSON value as indented text. */
export function pretty(value) {
  return JSON.stringify(value, null, 2);
}
