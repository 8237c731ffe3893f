// The agnt5 console: services and their workers, invocations as they change, one invocation in
// detail (a workflow's timeline too), and forms to invoke, cancel, re-submit and signal.
// Pages are views of the URL's fragment (#/, #/invocations?..., #/invocations/ID,
// #/services/S/F); live changes come from the gateway's event stream (/v1/events).

import { askKey, call, events, forgetKey, h, hasKey, pretty, query } from "./api.js";
import { schemaForm } from "./form.js";

const app = document.getElementById("app");
const live = document.getElementById("live");
const keyButton = document.getElementById("key-button");
const STATES = ["PENDING", "RUNNING", "SUSPENDED", "SUCCEEDED", "FAILED"];
const FINISHED = new Set(["SUCCEEDED", "FAILED"]);
const PAGE = 50;
const FOLLOW = 5; // requests at most for one page of a listing

let services = [];
let view = null; // the page shown: {onServices, onInvocation, onReset, dispose}
// Invocations that changed while a page was being read (it shows them once read), or "reset"
// when too many did or the stream was reset meanwhile.
let missed = [];

// Formatting.

const enc = encodeURIComponent;

function stateBadge(state) {
  return h("span", { class: `badge state state-${state}` }, state);
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "—";
}

function ago(ms) {
  if (ms === undefined || ms === null) return "—";
  return ms < 1000 ? "just now" : `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s ago`;
}

function duration(ms) {
  if (ms === undefined || ms === null) return "—";
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  return ms < 1000 ? `${ms.toFixed(ms < 10 ? 2 : 0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function errorBox(error) {
  return h("div", { class: "card error" }, h("strong", {}, error.code || "Error"), " ", error.message);
}

function component(service, name) {
  const entry = services.find((item) => item.name === service);
  return entry && entry.components.find((item) => item.name === name);
}

function traceId(traceparent) {
  const parts = (traceparent || "").split("-");
  return parts.length === 4 ? parts[1] : null;
}

// Pages.

function overviewPage() {
  const container = h("div");
  const draw = () => container.replaceChildren(...serviceCards());
  app.replaceChildren(h("h1", {}, "Services"), container);
  draw();
  return { onServices: draw };
}

function serviceCards() {
  if (!services.length) {
    return [h("div", { class: "card" }, h("p", {}, "No service has registered yet."),
      h("p", { class: "hint" }, "Start a worker against this coordinator: its functions show here."))];
  }
  return services.map((service) => h("section", { class: "card service", dataset: { service: service.name } },
    h("h2", {}, service.name, " ", h("span", { class: "version" }, service.version)),
    h("p", { class: "hint" }, `${service.workers.length} worker(s) · `, h("span", { class: "queued" }, `${service.queued} queued`)),
    h("h4", {}, "Functions and workflows"),
    h("table", {}, h("tr", {}, h("th", {}, "name"), h("th", {}, "kind"), h("th", {}, "description"), h("th", {}, "timeout"), h("th", {}, "retries")),
      service.components.map((item) => h("tr", {},
        h("td", {}, h("a", { href: `#/services/${enc(service.name)}/${enc(item.name)}`, class: "function-link" }, item.name)),
        h("td", {}, h("span", { class: "badge kind" }, item.kind)),
        h("td", {}, item.description || ""),
        h("td", {}, item.timeout ? `${item.timeout} s` : "—"),
        h("td", {}, item.retries),
      ))),
    h("h4", {}, "Workers"),
    service.workers.length
      ? h("table", { class: "workers" }, h("tr", {}, h("th", {}, "worker"), h("th", {}, "version"), h("th", {}, "in flight / capacity"), h("th", {}, "last heard"), h("th", {}, "")),
        service.workers.map((worker) => h("tr", {},
          h("td", { class: "mono" }, worker.worker_id),
          h("td", {}, worker.version),
          h("td", {}, `${worker.in_flight} / ${worker.max_concurrency}`,
            h("div", { class: "load" }, h("span", { style: { width: `${Math.min(100, (100 * worker.in_flight) / worker.max_concurrency)}%` } }))),
          h("td", {}, ago(worker.last_seen_ms_ago)),
          h("td", {}, worker.draining ? h("span", { class: "badge state-PENDING" }, "draining") : ""),
        )))
      : h("p", { class: "hint" }, "No worker connected."),
  ));
}

async function functionPage(serviceName, name) {
  if (!component(serviceName, name)) services = (await call("GET", "/v1/services")).services;
  const item = component(serviceName, name);
  if (!item) {
    app.replaceChildren(h("div", { class: "card error" }, `No function ${name} in service ${serviceName}.`));
    return {};
  }
  const form = schemaForm(item.input_schema || {});
  const outcome = h("div", { class: "outcome" });
  const invoke = async (event) => {
    event.preventDefault();
    outcome.replaceChildren();
    try {
      const input = form.read();
      const answer = await call("POST", `/v1/services/${enc(serviceName)}/functions/${enc(name)}/submit`, input === undefined ? {} : input);
      location.hash = `#/invocations/${enc(answer.invocation_id)}`;
    } catch (error) {
      outcome.replaceChildren(errorBox(error));
    }
  };
  app.replaceChildren(
    h("p", { class: "hint" }, h("a", { href: "#/" }, "Services"), ` / ${serviceName}`),
    h("h1", {}, name, " ", h("span", { class: "badge kind" }, item.kind)),
    item.description ? h("p", {}, item.description) : null,
    h("section", { class: "card" },
      h("h2", {}, "Invoke"),
      h("form", { id: "invoke-form", onsubmit: invoke, novalidate: true },
        form.element,
        h("button", { type: "submit", class: "primary", id: "invoke" }, "Invoke"),
      ),
      outcome,
    ),
    h("section", { class: "card" },
      h("h2", {}, "Schemas"),
      h("details", { class: "schema" }, h("summary", {}, "input"), h("pre", { class: "json" }, pretty(item.input_schema))),
      h("details", { class: "schema" }, h("summary", {}, "output"), h("pre", { class: "json" }, pretty(item.output_schema))),
    ),
    h("p", {}, h("a", { href: `#/invocations${query({ service: serviceName, function: name })}` }, "Invocations of this function →")),
  );
  return {};
}

function invocationRow(row) {
  return h("tr", { dataset: { id: row.invocation_id, state: row.state } },
    h("td", { class: "mono" }, h("a", { href: `#/invocations/${enc(row.invocation_id)}` }, row.invocation_id.slice(0, 12))),
    h("td", {}, `${row.service} / ${row.function}`),
    h("td", {}, stateBadge(row.state), row.error_code ? h("small", {}, row.error_code) : null),
    h("td", {}, row.attempt),
    h("td", {}, when(row.created_unix_ms)),
    h("td", {}, FINISHED.has(row.state) ? duration(row.duration_ms) : "—"),
  );
}

function toUnixSeconds(local) {
  return local ? String(new Date(local).getTime() / 1000) : "";
}

function toLocalInput(seconds) {
  if (!seconds) return "";
  const date = new Date(Number(seconds) * 1000);
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

async function invocationsPage(params) {
  const filters = {
    service: params.get("service") || "",
    function: params.get("function") || "",
    state: params.get("state") || "",
    created_after: params.get("created_after") || "",
    created_before: params.get("created_before") || "",
  };
  const serviceSelect = h("select", { name: "service" }, h("option", { value: "" }, "any"),
    services.map((service) => h("option", { value: service.name, selected: service.name === filters.service }, service.name)));
  const functionInput = h("input", { name: "function", value: filters.function, placeholder: "any" });
  const stateSelect = h("select", { name: "state" }, h("option", { value: "" }, "any"),
    STATES.map((state) => h("option", { value: state, selected: state === filters.state }, state)));
  const after = h("input", { type: "datetime-local", name: "created_after", value: toLocalInput(filters.created_after) });
  const before = h("input", { type: "datetime-local", name: "created_before", value: toLocalInput(filters.created_before) });
  const apply = (event) => {
    event.preventDefault();
    location.hash = `#/invocations${query({
      service: serviceSelect.value,
      function: functionInput.value.trim(),
      state: stateSelect.value,
      created_after: toUnixSeconds(after.value),
      created_before: toUnixSeconds(before.value),
    })}`;
  };
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true, id: "more" }, "Load more");
  const status = h("p", { class: "hint", id: "list-status" });
  const newer = h("button", { type: "button", hidden: true, id: "newer", class: "notice" });
  const rows = new Map();
  let cursor = null;
  let added = 0; // rows prepended live since the first page loaded
  const waiting = new Set(); // newer invocations not shown (more than a page arrived live)
  let loading = Promise.resolve(); // one load at a time, in the order asked
  const load = (reset) => (loading = loading.then(() => read(reset), () => read(reset)));
  // A filtered page looks at a bounded number of invocations, so it may come back short with a
  // cursor: it is followed a few times, so that matches further back show without a click each.
  const read = async (reset) => {
    const found = [];
    let next = reset ? "" : cursor;
    for (let asked = 0; asked < FOLLOW && found.length < PAGE && next !== null; asked++) {
      const page = await call("GET", `/v1/invocations${query({ ...filters, limit: PAGE - found.length, cursor: next })}`);
      found.push(...page.invocations);
      next = page.next_cursor;
    }
    if (reset) {
      body.replaceChildren();
      rows.clear();
      added = 0;
      waiting.clear();
      newer.hidden = true;
    }
    for (const row of found) {
      const tr = invocationRow(row);
      rows.set(row.invocation_id, tr);
      body.append(tr);
    }
    cursor = next;
    more.hidden = cursor === null;
    if (rows.size) status.textContent = "";
    else status.textContent = cursor === null ? "No invocations match." : "None among the newest: load more to look further back.";
  };
  more.addEventListener("click", () => load(false).catch((error) => status.replaceChildren(errorBox(error))));
  newer.addEventListener("click", () => load(true).catch((error) => status.replaceChildren(errorBox(error))));
  const matches = (row) =>
    (!filters.service || row.service === filters.service) &&
    (!filters.function || row.function === filters.function) &&
    (!filters.state || row.state === filters.state) &&
    (!filters.created_after || row.created_unix_ms >= Number(filters.created_after) * 1000) &&
    !filters.created_before;
  app.replaceChildren(
    h("h1", {}, "Invocations"),
    h("form", { class: "filters card", onsubmit: apply },
      h("label", {}, "service", serviceSelect),
      h("label", {}, "function", functionInput),
      h("label", {}, "state", stateSelect),
      h("label", {}, "created after", after),
      h("label", {}, "created before", before),
      h("button", { type: "submit" }, "Apply"),
    ),
    newer,
    h("section", { class: "card" },
      h("table", { class: "invocations" },
        h("thead", {}, h("tr", {}, ["invocation", "service / function", "state", "attempt", "created", "duration"].map((name) => h("th", {}, name)))),
        body),
      status, more),
  );
  await load(true);
  return {
    onInvocation(row) {
      const old = rows.get(row.invocation_id);
      if (old) {
        const tr = invocationRow(row);
        old.replaceWith(tr);
        rows.set(row.invocation_id, tr);
      } else if (matches(row) && added >= PAGE) {
        waiting.add(row.invocation_id); // a flood: offer to show them, not grow without end
        newer.textContent = `${waiting.size} newer invocation(s): show`;
        newer.hidden = false;
      } else if (matches(row)) {
        added += 1;
        const tr = invocationRow(row);
        tr.classList.add("new");
        rows.set(row.invocation_id, tr);
        body.prepend(tr);
        status.textContent = "";
      }
    },
    onReset: () => load(true),
  };
}

async function invocationPage(id) {
  let current = await call("GET", `/v1/invocations/${enc(id)}?detail=true`);
  const container = h("div");
  const notice = h("div");
  let timer = null;
  const reload = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      try {
        current = await call("GET", `/v1/invocations/${enc(id)}?detail=true`);
        draw();
      } catch (error) {
        notice.replaceChildren(errorBox(error));
      }
    }, 100);
  };
  const act = async (method, path, body, then) => {
    notice.replaceChildren();
    try {
      const answer = await call(method, path, body);
      if (then) then(answer);
      reload();
    } catch (error) {
      notice.replaceChildren(errorBox(error));
    }
  };
  const draw = () => container.replaceChildren(...invocationView(current, act));
  app.replaceChildren(
    h("p", { class: "hint" }, h("a", { href: "#/invocations" }, "Invocations"), ` / ${id}`),
    notice,
    container,
  );
  draw();
  return {
    onInvocation(row) {
      if (row.invocation_id === id) reload();
    },
    onReset: reload,
    dispose: () => clearTimeout(timer),
  };
}

function invocationView(invocation, act) {
  const finished = FINISHED.has(invocation.state);
  const item = component(invocation.service, invocation.function);
  const workflow = (item && item.kind === "workflow") || Array.isArray(invocation.steps);
  const base = `/v1/invocations/${enc(invocation.invocation_id)}`;
  const target = `/v1/services/${enc(invocation.service)}/functions/${enc(invocation.function)}`;
  const metadata = invocation.metadata || {};
  const facts = [
    ["function", h("a", { href: `#/services/${enc(invocation.service)}/${enc(invocation.function)}` }, `${invocation.service} / ${invocation.function}`)],
    ["attempt", item ? `${invocation.attempt} of at most ${item.retries + 1}` : invocation.attempt],
    ["created", when(invocation.created_unix_ms)],
    ["duration", duration(invocation.duration_ms)],
    ["worker", invocation.worker_id || "—"],
    ["trace id", h("span", { class: "mono" }, invocation.trace_id || traceId(metadata.traceparent) || "—")],
    ["deadline", invocation.deadline_unix_ms ? when(invocation.deadline_unix_ms) : "none"],
    ["idempotency key", invocation.idempotency_key || "—"],
  ];
  const actions = h("div", { class: "actions" });
  if (!finished) {
    actions.append(h("button", { type: "button", class: "danger", id: "cancel",
      onclick: () => act("POST", `${base}/cancel`, { reason: "cancelled from the console" }) }, "Cancel"));
  }
  if (invocation.input !== undefined) {
    actions.append(h("button", { type: "button", id: "resubmit",
      onclick: () => act("POST", `${target}/submit`, invocation.input === null ? {} : invocation.input,
        (answer) => { location.hash = `#/invocations/${enc(answer.invocation_id)}`; }) }, "Re-submit"));
  }
  const parts = [
    h("h1", {}, "Invocation ", h("span", { class: "mono", id: "invocation-id" }, invocation.invocation_id), " ", h("span", { id: "state" }, stateBadge(invocation.state))),
    h("dl", { class: "facts" }, facts.map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", {}, value)))),
    actions,
  ];
  if (workflow && !finished) parts.push(signalForm(base, act));
  if (invocation.error) {
    const error = invocation.error;
    parts.push(h("section", { class: "card", id: "error" },
      h("h2", {}, "Error"),
      h("p", {}, h("span", { class: "badge state-FAILED", id: "error-code" }, error.code), " ", error.type || "",
        error.retryable ? h("span", { class: "hint" }, " (retryable)") : null),
      h("pre", { class: "json", id: "error-message" }, error.message)));
  }
  if (invocation.state === "SUCCEEDED") {
    parts.push(h("section", { class: "card" }, h("h2", {}, "Output"), h("pre", { class: "json", id: "output" }, pretty(invocation.result))));
  }
  if (invocation.input !== undefined) {
    parts.push(h("section", { class: "card" }, h("h2", {}, "Input"), h("pre", { class: "json", id: "input" }, pretty(invocation.input))));
  }
  if (Array.isArray(invocation.steps)) parts.push(timeline(invocation));
  return parts;
}

function signalForm(base, act) {
  const name = h("input", { name: "signal-name", placeholder: "name", required: true });
  const payload = h("textarea", { name: "signal-payload", rows: 2, placeholder: "JSON payload (empty: null)" });
  const problem = h("p", { class: "form-error" });
  const send = (event) => {
    event.preventDefault();
    problem.textContent = "";
    let body = null;
    if (payload.value.trim()) {
      try {
        body = JSON.parse(payload.value);
      } catch (error) {
        problem.textContent = `The payload is not valid JSON: ${error.message}`;
        return;
      }
    }
    act("POST", `${base}/signals/${enc(name.value.trim())}`, JSON.stringify(body));
  };
  return h("section", { class: "card" },
    h("h2", {}, "Send a signal"),
    h("form", { id: "signal-form", onsubmit: send, class: "filters" },
      h("label", {}, "signal", name),
      h("label", {}, "payload", payload),
      h("button", { type: "submit", class: "primary", id: "send-signal" }, "Send")),
    problem);
}

function timeline(invocation) {
  const steps = invocation.steps;
  const start = Math.min(...steps.map((step) => step.started_unix_ms).filter(Boolean), invocation.created_unix_ms || Infinity);
  const end = Math.max(...steps.map((step) => step.finished_unix_ms || Date.now()), start + 1);
  const bar = (step) => {
    const from = step.started_unix_ms || start;
    const to = step.finished_unix_ms || Date.now();
    const left = (100 * (from - start)) / (end - start);
    const width = Math.max(0.5, (100 * (to - from)) / (end - start));
    return h("div", { class: "bar" }, h("span", { class: step.state, style: { left: `${left}%`, width: `${Math.min(width, 100 - left)}%` } }));
  };
  // A step's time on its worker; a task's, sleep's or signal's wait.
  const took = (step) => {
    if (step.state === "pending") return "—";
    return duration(step.kind === "step" ? step.duration_ms : step.finished_unix_ms - step.started_unix_ms);
  };
  const detail = (step) => {
    if (step.child_id) return h("a", { href: `#/invocations/${enc(step.child_id)}` }, `child ${step.child_id.slice(0, 12)}`);
    if (step.fire_unix_ms) return `fires ${when(step.fire_unix_ms)}`;
    if (step.timeout_unix_ms) return `times out ${when(step.timeout_unix_ms)}`;
    if (step.error) return `${step.error.code}: ${step.error.message}`;
    return "";
  };
  return h("section", { class: "card timeline", id: "timeline" },
    h("h2", {}, "Timeline"),
    h("table", {},
      h("tr", {}, ["#", "kind", "name", "state", "attempt", "started", "duration", "", ""].map((name) => h("th", {}, name))),
      steps.map((step) => h("tr", { dataset: { seq: step.seq, kind: step.kind, state: step.state } },
        h("td", {}, step.seq),
        h("td", {}, h("span", { class: "badge kind" }, step.kind)),
        h("td", {}, step.name),
        h("td", {}, h("span", { class: `badge state-${step.state}` }, step.state)),
        h("td", {}, step.attempt),
        h("td", {}, when(step.started_unix_ms)),
        h("td", {}, took(step)),
        h("td", {}, bar(step)),
        h("td", {}, detail(step)),
      ))));
}

// Routing, the event stream, the key.

function parseHash() {
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search || "") };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let connected;
const streaming = new Promise((resolve) => { connected = resolve; }); // the first connection

let rendering = 0;

async function render() {
  const number = ++rendering;
  showKeyButton();
  view?.dispose?.();
  view = null;
  const { parts, params } = parseHash();
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === (parts[0] || "overview") || (link.dataset.nav === "overview" && parts[0] === "services"));
  }
  try {
    // Read a page once the stream is connected (or gave up for now): a change between the
    // read and the connection would be missed otherwise.
    await Promise.race([streaming, sleep(3000)]);
    missed = []; // from here on, what changes is given to the page once read
    if (!services.length) services = (await call("GET", "/v1/services")).services;
    let shown;
    if (parts[0] === "invocations" && parts[1]) shown = await invocationPage(parts[1]);
    else if (parts[0] === "invocations") shown = await invocationsPage(params);
    else if (parts[0] === "services" && parts[2]) shown = await functionPage(parts[1], parts[2]);
    else shown = overviewPage();
    if (number === rendering) {
      view = shown;
      if (missed === "reset") view.onReset?.();
      else for (const row of missed) view.onInvocation?.(row);
    } else if (shown && shown.dispose) shown.dispose();
  } catch (error) {
    if (number === rendering) app.replaceChildren(errorBox(error));
  }
}

async function listen() {
  let delay = 500;
  for (;;) {
    let first = true;
    try {
      for await (const { event, data } of events("/v1/events")) {
        if (first) {
          first = false;
          live.className = "live on";
          live.textContent = "live";
          delay = 500;
          connected();
          if (view) view.onReset?.(); // what changed while it was not connected
          else missed = "reset";
        }
        if (event === "services") {
          services = data.services;
          view?.onServices?.();
        } else if (event === "invocation") {
          if (view) view.onInvocation?.(data);
          else if (missed !== "reset" && missed.length < 1000) missed.push(data);
          else missed = "reset";
        } else if (event === "reset") {
          if (view) view.onReset?.();
          else missed = "reset";
        }
      }
    } catch {
      // the stream failed or the server refused it: try again below
    }
    live.className = "live";
    live.textContent = "reconnecting";
    await sleep(delay);
    delay = Math.min(delay * 2, 10000);
  }
}

function showKeyButton() {
  keyButton.textContent = hasKey() ? "Forget key" : "Key";
}

keyButton.addEventListener("click", async () => {
  if (hasKey()) forgetKey();
  else await askKey("Enter a client key for this coordinator.");
  showKeyButton();
  render();
});

window.addEventListener("hashchange", render);
showKeyButton();
render();
listen();
