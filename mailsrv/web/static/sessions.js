// Live sessions: every open POP3/IMAP/SMTP connection, and one transcript streaming live.
"use strict";

const MAX_LINES = 3000;
const REPORT_DELAY_MS = 400; // a burst of lines asks for the card once
const sessions = new Map(); // id -> {info, closed, lines: []}
let selected = null;
let reportTimer = null;

const $ = (id) => document.getElementById(id);

function entry(id) {
  if (!sessions.has(id)) sessions.set(id, { info: { id, protocol: protocolOf(id) }, closed: false, lines: [], loaded: false });
  return sessions.get(id);
}

function renderList() {
  const open = $("open-sessions");
  const closed = $("closed-sessions");
  open.replaceChildren();
  closed.replaceChildren();
  const all = [...sessions.values()].sort((a, b) => (b.info.started || 0) - (a.info.started || 0));
  for (const s of all) {
    const i = s.info;
    const item = h(
      "li",
      { class: s.closed ? "closed" : "", dataset: { session: i.id }, onclick: () => select(i.id) },
      h(
        "div",
        { class: "line1" },
        badge(i.protocol),
        h("span", { class: "sid" }, i.id),
        i.tls ? h("span", { class: "badge" }, "tls") : null,
        h("span", { class: "state" }, s.closed ? "closed" : i.state || ""),
      ),
      h(
        "div",
        { class: "line2" },
        i.user ? `user ${i.user} · ` : "not logged in · ",
        i.peer ? `from ${i.peer} · ` : "",
        i.started ? (s.closed ? `opened ${fmtTime(i.started)}` : `for ${fmtSince(i.started)}`) : "",
      ),
    );
    if (i.id === selected) item.classList.add("selected");
    (s.closed ? closed : open).append(item);
  }
  $("no-sessions").hidden = all.some((s) => !s.closed);
}

async function select(id) {
  selected = id;
  const s = entry(id);
  if (!s.loaded) {
    try {
      const t = await api(`/sessions/${enc(id)}/transcript`);
      // Lines that arrived live while the transcript loaded are already in t.lines.
      s.lines = t.lines.slice(-MAX_LINES);
      if (t.info) s.info = t.info;
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    s.loaded = true;
  }
  renderList();
  const i = s.info;
  $("transcript-title").replaceChildren(badge(i.protocol || protocolOf(id)), ` ${id}`, i.user ? ` · ${i.user}` : "");
  const box = $("transcript");
  box.replaceChildren(...s.lines.map(transcriptLine));
  box.scrollTop = box.scrollHeight;
  loadReport(id);
}

// The report card: the habits the server noticed in the selected session's client.
function renderReport(id, findings) {
  const card = $("report-card");
  if (!findings.length) {
    card.replaceChildren(h("div", { class: "good" }, `No habits to report for ${id} so far.`));
    return;
  }
  card.replaceChildren(
    ...findings.map((f) =>
      h(
        "div",
        { class: `finding ${f.severity}`, dataset: { code: f.code } },
        h("div", {}, h("span", { class: "code" }, f.code), h("span", { class: "badge sev" }, f.severity), f.count > 1 ? ` ×${f.count}` : ""),
        h("p", {}, f.message),
        h("ul", {}, ...f.evidence.map((line) => h("li", {}, line))),
      ),
    ),
  );
}

async function loadReport(id) {
  try {
    const { findings } = await api(`/sessions/${enc(id)}/report`);
    if (id === selected) renderReport(id, findings);
  } catch (err) {
    if (err.status !== 404) throw err;
    if (id === selected) renderReport(id, []);
  }
}

function reportSoon(id) {
  clearTimeout(reportTimer);
  reportTimer = setTimeout(() => loadReport(id), REPORT_DELAY_MS);
}

function onSession(msg) {
  const s = entry(msg.session.id);
  if (msg.action === "close") {
    s.closed = true;
  } else {
    s.info = msg.session;
    s.closed = false;
    if (msg.action === "open" && $("follow").checked && (!selected || entry(selected).closed)) {
      select(msg.session.id);
      return;
    }
  }
  renderList();
  if (msg.session.id === selected) {
    const i = s.info;
    $("transcript-title").replaceChildren(badge(i.protocol || protocolOf(i.id)), ` ${i.id}`, i.user ? ` · ${i.user}` : "", s.closed ? " · closed" : "");
    if (s.closed) reportSoon(i.id); // habits noted at close (no-logout, DELE without QUIT)
  }
}

function onTrace(line) {
  const s = entry(line.session);
  if (!s.info.started) s.info.started = line.time;
  s.lines.push(line);
  if (s.lines.length > MAX_LINES) s.lines.splice(0, s.lines.length - MAX_LINES);
  if (line.session === selected) {
    const box = $("transcript");
    stickToBottom(box, () => box.append(transcriptLine(line)));
    reportSoon(line.session);
  }
}

async function loadOpen() {
  const { sessions: live, closed } = await api("/sessions");
  for (const i of closed) {
    if (!sessions.has(i.id)) entry(i.id).info = i;
    entry(i.id).closed = true;
  }
  const ids = new Set(live.map((i) => i.id));
  for (const s of sessions.values()) if (!ids.has(s.info.id)) s.closed = true;
  for (const i of live) {
    const s = entry(i.id);
    s.info = i;
    s.closed = false;
  }
  renderList();
  if (!selected && live.length) select(live[live.length - 1].id);
}

document.addEventListener("DOMContentLoaded", () => {
  liveStream({}, { open: loadOpen, session: onSession, trace: onTrace, resync: loadOpen });
  setInterval(renderList, 5000); // keep the "for 12s" ages moving
});
