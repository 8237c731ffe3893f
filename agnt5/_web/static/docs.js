// The API docs page: every operation of the app's OpenAPI document, its parameters, schemas and
// responses, and a form to try it (generated from its request schema).

import { call, h, pretty, root } from "./api.js";
import { schemaForm } from "./form.js";

const METHODS = ["get", "post", "put", "patch", "delete"];
const app = document.getElementById("app");

async function main() {
  let spec;
  try {
    spec = await call("GET", "/openapi.json");
  } catch (error) {
    app.replaceChildren(h("p", { class: "error" }, `Cannot load the API description: ${error.message}`));
    return;
  }
  document.title = `${spec.info.title} · API docs`;
  const groups = new Map();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const tag = (operation.tags && operation.tags[0]) || "other";
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push(operationView(spec, method, path, operation));
    }
  }
  app.replaceChildren(
    h("section", { class: "intro" },
      h("h1", {}, spec.info.title, " ", h("span", { class: "version" }, spec.info.version)),
      spec.info.description ? h("p", {}, spec.info.description) : null,
      h("p", { class: "hint" }, "OpenAPI ", spec.openapi, " · ", h("a", { href: `${root}/openapi.json` }, "openapi.json")),
    ),
    ...[...groups].map(([tag, views]) => h("section", { class: "group" }, h("h2", {}, tag), views)),
  );
}

function operationView(spec, method, path, operation) {
  const body = operation.requestBody && operation.requestBody.content && operation.requestBody.content["application/json"];
  const parameters = operation.parameters || [];
  const inputs = parameters.map((parameter) => ({
    parameter,
    input: h("input", { type: "text", name: `param.${parameter.in}.${parameter.name}`, required: parameter.required, placeholder: parameter.schema && parameter.schema.type }),
  }));
  const form = body ? schemaForm(body.schema, spec) : null;
  const output = h("div", { class: "response" });
  const send = async () => {
    let url = path;
    const search = new URLSearchParams();
    const headers = {};
    for (const { parameter, input } of inputs) {
      const value = input.value;
      if (value === "") continue;
      if (parameter.in === "path") url = url.replace(`{${parameter.name}}`, encodeURIComponent(value));
      else if (parameter.in === "query") search.append(parameter.name, value);
      else if (parameter.in === "header") headers[parameter.name] = value;
    }
    if (search.toString()) url += `?${search}`;
    output.replaceChildren(h("p", { class: "hint" }, "Sending…"));
    try {
      const value = form ? form.read() : undefined;
      const answer = await call(method.toUpperCase(), url, form ? value === undefined ? {} : value : undefined, { raw: true, headers });
      output.replaceChildren(
        h("p", {}, h("span", { class: `status status-${String(answer.status)[0]}xx` }, answer.status)),
        h("pre", { class: "json" }, typeof answer.body === "string" ? answer.body : pretty(answer.body)),
      );
    } catch (error) {
      output.replaceChildren(h("p", { class: "error" }, error.message));
    }
  };
  return h("details", { class: `operation ${method}`, id: operation.operationId },
    h("summary", {},
      h("span", { class: `method ${method}` }, method.toUpperCase()),
      h("code", { class: "path" }, path),
      h("span", { class: "summary" }, operation.summary || ""),
    ),
    operation.description ? h("p", { class: "description" }, operation.description) : null,
    parameters.length ? h("div", {}, h("h4", {}, "Parameters"), h("table", { class: "params" },
      inputs.map(({ parameter, input }) => h("tr", {},
        h("td", {}, h("code", {}, parameter.name), parameter.required ? h("span", { class: "required" }, " *") : null),
        h("td", { class: "hint" }, parameter.in),
        h("td", {}, parameter.description || ""),
        h("td", {}, input),
      )),
    )) : null,
    body ? h("div", {}, h("h4", {}, "Request body"), schemaBlock(body.schema)) : null,
    h("h4", {}, "Responses"),
    h("table", { class: "responses" }, Object.entries(operation.responses || {}).map(([status, response]) => h("tr", {},
      h("td", {}, h("span", { class: `status status-${status[0]}xx` }, status)),
      h("td", {}, response.description || ""),
      h("td", {}, responseSchema(response)),
    ))),
    h("div", { class: "try" },
      h("h4", {}, "Try it"),
      form ? form.element : null,
      h("button", { type: "button", class: "primary", onclick: send }, "Send"),
      output,
    ),
  );
}

function responseSchema(response) {
  const content = response.content && (response.content["application/json"] || response.content["text/event-stream"]);
  return content && content.schema ? schemaBlock(content.schema) : null;
}

function schemaBlock(schema) {
  return h("details", { class: "schema" }, h("summary", {}, "schema"), h("pre", { class: "json" }, pretty(schema)));
}

main();
