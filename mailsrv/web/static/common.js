// mailsrv console: helpers shared by every page (no framework, no build step).
"use strict";

const API = "/api/v1";

// Bidi controls (embeddings, overrides, isolates, marks) from mail are shown, not obeyed:
// "invoice\u202efdp.exe" must not read as "invoiceexe.pdf". Mail clients do the same.
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
function showBidi(text) {
  return String(text).replace(BIDI_CONTROLS, (c) => `[U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}]`);
}

// Build a DOM element: h("li", {class: "x", onclick: fn}, "text", child...). Text is never HTML,
// and shows bidi controls (showBidi).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(showBidi(child)));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const init = { method: options.method || "GET", headers: {} };
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    init.headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(API + path, init);
  } catch {
    // The network failed (the server stopped or restarts): say so instead of a raw TypeError.
    throw new ApiError(0, "mailsrv is not answering");
  }
  const type = resp.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) throw new ApiError(resp.status, (body && body.error) || resp.statusText);
  return body;
}

function enc(name) {
  return encodeURIComponent(name);
}

function folderPath(user, folder) {
  return `/users/${enc(user)}/folders/${enc(folder)}`;
}

function fmtSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function fmtTime(seconds) {
  const d = new Date(seconds * 1000);
  return d.toLocaleTimeString([], { hour12: false });
}

function fmtWhen(seconds) {
  const d = new Date(seconds * 1000);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return fmtTime(seconds).slice(0, 5);
  return d.toLocaleDateString([], { month: "short", day: "numeric" });
}

function fmtSince(seconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function protocolOf(actor) {
  if (!actor) return "other";
  const head = actor.split("-")[0];
  return ["pop3", "imap", "smtp", "lmtp"].includes(head) ? head : actor;
}

function badge(protocol) {
  return h("span", { class: `badge ${protocol}` }, protocol);
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// One EventSource for the page; handlers by event name ("store", "trace", "session", "resync").
function liveStream(params, handlers) {
  const status = document.getElementById("live-status");
  const query = new URLSearchParams(params).toString();
  const source = new EventSource(`${API}/stream${query ? "?" + query : ""}`);
  const show = (cls, text) => {
    if (!status) return;
    status.className = `status ${cls}`;
    status.textContent = text;
  };
  source.addEventListener("hello", () => {
    show("live", "live");
    if (handlers.open) handlers.open();
  });
  source.addEventListener("error", () => show("down", "reconnecting…"));
  for (const [name, fn] of Object.entries(handlers)) {
    if (name === "open") continue;
    source.addEventListener(name, (ev) => fn(JSON.parse(ev.data)));
  }
  return source;
}

// A request that failed and that no caller handled (a live refresh while the server stops, say)
// shows in the status line; it is an expected state of a console, not a script error.
window.addEventListener("unhandledrejection", (ev) => {
  if (!(ev.reason instanceof ApiError)) return;
  ev.preventDefault();
  const status = document.getElementById("live-status");
  if (status) {
    status.className = "status down";
    status.textContent = ev.reason.message;
  }
});

// Mark the current page in the top bar.
document.addEventListener("DOMContentLoaded", () => {
  for (const a of document.querySelectorAll(".topbar nav a")) {
    if (a.getAttribute("href") === location.pathname) a.classList.add("active");
  }
});

function transcriptLine(line) {
  const dir = line.direction === "*" ? "E" : line.direction;
  return h(
    "div",
    { class: `ln ${dir}` },
    h("span", { class: "t" }, fmtTime(line.time)),
    h("span", { class: "d" }, line.direction === "*" ? "·" : line.direction),
    h("span", { class: "x" }, line.text.replace(/\r?\n$/, "")),
  );
}

function stickToBottom(el, append) {
  const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  append();
  if (atBottom) el.scrollTop = el.scrollHeight;
}
