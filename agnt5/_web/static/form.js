// A form generated from a JSON Schema (the subset agnt5's schemas use): objects become fieldsets,
// strings, numbers and booleans inputs, enums selects, arrays of simple items lists, and
// anything else a JSON text box. read() gives the value (or throws FormError naming the field),
// write(value) shows one.

import { h, pretty } from "./api.js";

export class FormError extends Error {}

const SIMPLE = new Set(["string", "integer", "number", "boolean"]);

/** Resolve a local $ref ("#/$defs/X", "#/components/schemas/X") against document. */
function resolve(schema, document, depth = 0) {
  while (schema && typeof schema.$ref === "string" && schema.$ref.startsWith("#/") && depth < 32) {
    let target = document;
    for (const part of schema.$ref.slice(2).split("/")) {
      const key = decodeURIComponent(part).replace(/~1/g, "/").replace(/~0/g, "~");
      target = target && typeof target === "object" ? target[key] : undefined;
    }
    if (target === undefined) return {};
    schema = target;
    depth += 1;
  }
  return schema || {};
}

function typeOf(schema) {
  if (Array.isArray(schema.type)) {
    const types = schema.type.filter((type) => type !== "null");
    return types.length === 1 ? types[0] : undefined;
  }
  return schema.type;
}

/** The schema without its null branch ({anyOf: [X, {type: null}]} -> X), and whether it had one. */
function unwrapNullable(schema, document) {
  const branches = schema.anyOf || schema.oneOf;
  if (Array.isArray(branches) && branches.length === 2) {
    const other = branches.filter((branch) => resolve(branch, document).type !== "null");
    if (other.length === 1) return [resolve(other[0], document), true];
  }
  if (Array.isArray(schema.type) && schema.type.includes("null")) return [schema, true];
  return [schema, false];
}

/** A form for schema; `document` resolves its references (the schema itself by default). */
export function schemaForm(schema, document = schema) {
  const top = resolve(schema || {}, document);
  const field = build(top, document, "", true);
  let raw = null;
  const toggle = h("input", { type: "checkbox", name: "__json" });
  const rawBox = h("textarea", { name: "__raw", rows: 8, spellcheck: false, hidden: true });
  toggle.addEventListener("change", () => {
    if (toggle.checked) {
      let value;
      try {
        value = field.read();
      } catch {
        value = undefined;
      }
      rawBox.value = value === undefined ? "" : pretty(value);
      raw = rawBox;
    } else {
      try {
        field.write(parseJson(rawBox.value, "the input"));
      } catch (error) {
        toggle.checked = true;
        alertIn(element, error.message);
        return;
      }
      raw = null;
    }
    rawBox.hidden = !toggle.checked;
    field.element.hidden = toggle.checked;
  });
  const element = h(
    "div",
    { class: "schema-form" },
    field.element,
    rawBox,
    h("label", { class: "json-toggle" }, toggle, " edit as JSON"),
  );
  return {
    element,
    read() {
      if (raw) return rawBox.value.trim() ? parseJson(rawBox.value, "the input") : undefined;
      return field.read();
    },
    write(value) {
      if (raw) rawBox.value = value === undefined ? "" : pretty(value);
      else field.write(value);
    },
  };
}

function alertIn(element, message) {
  const old = element.querySelector(".form-error");
  if (old) old.remove();
  element.append(h("p", { class: "form-error" }, message));
}

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FormError(`${what} is not valid JSON: ${error.message}`);
  }
}

function label(path) {
  return path || "the input";
}

function build(schema, document, path, required) {
  const [inner, nullable] = unwrapNullable(resolve(schema, document), document);
  if (nullable) return nullableField(build(inner, document, path, required), path);
  const type = typeOf(inner);
  if (inner.const !== undefined) return constField(inner.const);
  if (Array.isArray(inner.enum)) return enumField(inner, path, required);
  if (type === "object" && inner.properties) return objectField(inner, document, path);
  if (type === "array" && !inner.prefixItems) {
    const items = resolve(inner.items || {}, document);
    if (SIMPLE.has(typeOf(items)) && !items.enum) return listField(items, document, path);
  }
  if (SIMPLE.has(type)) return inputField(inner, type, path, required);
  return jsonField(inner, path, required);
}

function describe(schema) {
  const parts = [];
  if (schema.format) parts.push(schema.format);
  if (schema.contentEncoding) parts.push(schema.contentEncoding);
  if (schema.description) parts.push(schema.description);
  return parts.join(" · ");
}

function inputField(schema, type, path, required) {
  if (type === "boolean") {
    const box = h("input", { type: "checkbox", name: path });
    return {
      element: box,
      read: () => box.checked,
      write: (value) => {
        box.checked = Boolean(value);
      },
    };
  }
  const numeric = type === "integer" || type === "number";
  const input = h("input", {
    type: numeric ? "number" : "text",
    name: path,
    step: type === "integer" ? "1" : numeric ? "any" : undefined,
    placeholder: describe(schema) || type,
    required,
  });
  return {
    element: input,
    read() {
      const text = input.value;
      if (text === "") {
        if (required && !numeric && type === "string") return "";
        if (required) throw new FormError(`${label(path)} is required`);
        return undefined;
      }
      if (!numeric) return text;
      const number = Number(text);
      if (!Number.isFinite(number) || (type === "integer" && !Number.isInteger(number))) {
        throw new FormError(`${label(path)} must be ${type === "integer" ? "an integer" : "a number"}`);
      }
      return number;
    },
    write(value) {
      input.value = value === undefined || value === null ? "" : String(value);
    },
  };
}

function constField(value) {
  return { element: h("code", {}, JSON.stringify(value)), read: () => value, write: () => {} };
}

function enumField(schema, path, required) {
  const select = h(
    "select",
    { name: path },
    required ? null : h("option", { value: "" }, "—"),
    schema.enum.map((value, index) => h("option", { value: String(index) }, JSON.stringify(value))),
  );
  return {
    element: select,
    read: () => (select.value === "" ? undefined : schema.enum[Number(select.value)]),
    write(value) {
      const index = schema.enum.findIndex((option) => JSON.stringify(option) === JSON.stringify(value));
      select.value = index < 0 ? "" : String(index);
    },
  };
}

function nullableField(field, path) {
  const isNull = h("input", { type: "checkbox", name: `${path}.__null`, title: "null" });
  isNull.addEventListener("change", () => {
    field.element.hidden = isNull.checked;
  });
  return {
    element: h("span", { class: "nullable" }, field.element, h("label", {}, isNull, " null")),
    read: () => (isNull.checked ? null : field.read()),
    write(value) {
      isNull.checked = value === null;
      field.element.hidden = isNull.checked;
      if (value !== null) field.write(value);
    },
  };
}

function objectField(schema, document, path) {
  const required = new Set(schema.required || []);
  const fields = Object.entries(schema.properties).map(([name, property]) => {
    const childPath = path ? `${path}.${name}` : name;
    const field = build(property, document, childPath, required.has(name));
    const resolved = resolve(property, document);
    const row = h(
      "div",
      { class: "field" },
      h("label", { class: "field-name", for: childPath }, name, required.has(name) ? h("span", { class: "required" }, " *") : null),
      field.element,
      resolved.description ? h("small", {}, resolved.description) : null,
    );
    if (field.element.id === "") field.element.id = childPath;
    return [name, field, row];
  });
  const element = h(path ? "fieldset" : "div", { class: "object" }, fields.map(([, , row]) => row));
  if (!fields.length) element.append(h("p", { class: "hint" }, "No input."));
  return {
    element,
    read() {
      const value = {};
      for (const [name, field] of fields) {
        const item = field.read();
        if (item !== undefined) value[name] = item;
      }
      return value;
    },
    write(value) {
      for (const [name, field] of fields) field.write(value && typeof value === "object" ? value[name] : undefined);
    },
  };
}

function listField(items, document, path) {
  const rows = h("div", { class: "list" });
  const entries = [];
  const add = (value) => {
    const field = build(items, document, `${path}.${entries.length}`, true);
    const entry = { field };
    entry.row = h(
      "div",
      { class: "list-item" },
      field.element,
      h("button", {
        type: "button",
        class: "small",
        onclick: () => {
          entries.splice(entries.indexOf(entry), 1);
          entry.row.remove();
        },
      }, "remove"),
    );
    entries.push(entry);
    rows.append(entry.row);
    if (value !== undefined) field.write(value);
  };
  const element = h("div", { class: "array" }, rows, h("button", { type: "button", class: "small", name: `${path}.__add`, onclick: () => add() }, "add item"));
  return {
    element,
    read: () => entries.map((entry) => entry.field.read()),
    write(value) {
      entries.splice(0);
      rows.replaceChildren();
      for (const item of Array.isArray(value) ? value : []) add(item);
    },
  };
}

function jsonField(schema, path, required) {
  const box = h("textarea", { name: path, rows: 3, spellcheck: false, placeholder: "JSON" });
  return {
    element: box,
    read() {
      if (box.value.trim() === "") {
        if (required) throw new FormError(`${label(path)} is required (JSON)`);
        return undefined;
      }
      return parseJson(box.value, label(path));
    },
    write(value) {
      box.value = value === undefined ? "" : pretty(value);
    },
  };
}
