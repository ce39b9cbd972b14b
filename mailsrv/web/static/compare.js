// POP3 versus IMAP: one user's sessions side by side, the Maildir files between them, and a
// timeline of who changed what. Everything updates live from /api/v1/stream.
"use strict";

const TAIL = 40; // transcript lines kept per session card
const TIMELINE = 200;
const KIND_TEXT = {
  delivered: "delivered",
  appended: "appended (IMAP APPEND)",
  copied: "copied in",
  moved: "moved out",
  flags: "flags changed",
  expunged: "expunged",
  fetched: "fetched",
  folder_created: "folder created",
  folder_deleted: "folder deleted",
  folder_renamed: "folder renamed",
  external: "changed on disk",
  reset: "store reset",
};

const view = { user: null, folder: "INBOX", files: new Map(), noMaildir: false };
const cards = new Map(); // session id -> {info, lines, closed}
const $ = (id) => document.getElementById(id);

function explain(e) {
  const proto = e.protocol;
  if (e.kind === "expunged" && proto === "pop3") return "deleted by POP3 at QUIT (DELE only marked them)";
  if (e.kind === "expunged" && proto === "imap") return "removed by IMAP EXPUNGE";
  if (e.kind === "fetched" && proto === "pop3") return "downloaded (RETR)";
  if (e.kind === "fetched" && proto === "imap") return "read on the server (FETCH)";
  if (e.kind === "moved") return `to ${e.detail}`;
  if (e.kind === "folder_renamed") return `now ${e.detail}`;
  return e.detail || "";
}

async function loadUsers() {
  const { users } = await api("/users");
  const sel = $("user");
  const current = view.user;
  sel.replaceChildren(...users.map((u) => h("option", { value: u.name }, u.name)));
  if (!users.length) {
    view.user = null;
    return;
  }
  view.user = users.some((u) => u.name === current) ? current : new URLSearchParams(location.hash.slice(1)).get("user") || users[0].name;
  if (!users.some((u) => u.name === view.user)) view.user = users[0].name;
  sel.value = view.user;
}

async function loadFolders() {
  const sel = $("folder");
  if (!view.user) return sel.replaceChildren();
  const { folders } = await api(`/users/${enc(view.user)}/folders`);
  sel.replaceChildren(...folders.map((f) => h("option", { value: f.name }, f.name)));
  if (!folders.some((f) => f.name === view.folder)) view.folder = "INBOX";
  sel.value = view.folder;
}

function fileRow(f, cls) {
  return h(
    "li",
    { class: cls, dataset: { name: f.name } },
    h("span", { class: "uid" }, f.uid ? `uid ${f.uid}` : ""),
    h("span", { class: "fname", title: f.name }, f.name.split(":")[0]),
    cls === "gone"
      ? h("span", { class: "letters" }, "removed")
      : h("span", { class: "letters", title: "flag letters after :2," }, f.name.includes(":2,") ? `:2,${f.flags}` : ""),
  );
}

async function loadMaildir() {
  const box = $("maildir");
  if (!view.user) {
    box.replaceChildren(h("div", { class: "empty" }, "No users yet."));
    return;
  }
  let listing;
  try {
    listing = await api(`/users/${enc(view.user)}/maildir?folder=${enc(view.folder)}`);
  } catch (err) {
    view.noMaildir = err.status === 404 && err.message.includes("not a Maildir");
    box.replaceChildren(h("div", { class: "notice" }, view.noMaildir ? "This server keeps mail in memory: there are no files to show. The sessions and the timeline still work." : err.message));
    return;
  }
  $("maildir-path").textContent = listing.path + "/";
  const before = view.files;
  const now = new Map();
  const parts = [];
  for (const sub of ["new", "cur", "tmp"]) {
    const rows = listing[sub].map((f) => {
      now.set(f.name, sub);
      return fileRow(f, before.size && !before.has(f.name) ? "added" : "");
    });
    for (const [name, where] of before) {
      if (where === sub && !now.has(name) && !listing.new.concat(listing.cur).some((f) => f.name.split(":")[0] === name.split(":")[0])) {
        rows.push(fileRow({ name, flags: "", uid: null }, "gone"));
      }
    }
    if (!rows.length) rows.push(h("li", { class: "none" }, "(empty)"));
    parts.push(
      h("div", { class: "dir", dataset: { dir: sub } }, h("h4", {}, `${sub}/`, h("span", { class: "count" }, listing[`${sub}_count`])), h("ul", { class: "files" }, rows)),
    );
  }
  parts.push(h("h4", { class: "dir" }, "dovecot-uidlist"), h("pre", { class: "uidlist", id: "uidlist" }, listing.uidlist || "(not written yet)"));
  view.files = now;
  box.replaceChildren(...parts);
}

function renderCards() {
  for (const proto of ["pop3", "imap"]) {
    const box = $(`${proto}-sessions`);
    const mine = [...cards.values()].filter((c) => c.info.protocol === proto && c.info.user === view.user);
    box.replaceChildren(
      ...mine.map((c) => {
        const t = h("div", { class: "transcript" }, c.lines.map(transcriptLine));
        const card = h(
          "div",
          { class: "mini-session", dataset: { session: c.info.id } },
          h("div", { class: "head" }, badge(proto), h("span", { class: "sid" }, c.info.id), h("span", { class: "state" }, c.closed ? "closed" : c.info.state)),
          t,
        );
        setTimeout(() => (t.scrollTop = t.scrollHeight));
        return card;
      }),
    );
    if (!mine.length) box.append(h("div", { class: "lesson" }, `No ${proto.toUpperCase()} session of ${view.user || "this user"} is open.`));
  }
}

async function track(info) {
  const known = cards.get(info.id);
  if (known) {
    known.info = info;
    return;
  }
  const card = { info, lines: [], closed: false };
  cards.set(info.id, card);
  try {
    const t = await api(`/sessions/${enc(info.id)}/transcript`);
    card.lines = t.lines.slice(-TAIL);
  } catch (err) {
    if (err.status !== 404) throw err;
  }
}

async function loadSessions() {
  const { sessions } = await api("/sessions");
  for (const c of cards.values()) c.closed = true;
  for (const info of sessions) {
    await track(info);
    cards.get(info.id).closed = false;
  }
  renderCards();
}

function timelineRow(e, fresh) {
  return h(
    "tr",
    { class: fresh ? "fresh" : "", dataset: { kind: e.kind, protocol: e.protocol } },
    h("td", { class: "mono" }, fmtTime(e.time)),
    h("td", {}, badge(e.protocol)),
    h("td", { class: "mono" }, e.actor || "—"),
    h("td", { class: "kind" }, KIND_TEXT[e.kind] || e.kind),
    h("td", {}, e.folder),
    h("td", { class: "mono" }, e.uids.join(", ")),
    h("td", {}, explain(e)),
  );
}

async function loadTimeline() {
  const body = $("timeline");
  if (!view.user) return body.replaceChildren();
  const { events } = await api(`/events?user=${enc(view.user)}&limit=${TIMELINE}`);
  body.replaceChildren(...events.reverse().map((e) => timelineRow(e, false)));
  if (!events.length) body.append(h("tr", {}, h("td", { colspan: 7, class: "lesson" }, "Nothing happened to this mailbox yet: deliver a mail, or connect a POP3 or IMAP client.")));
}

const refreshDisk = debounce(loadMaildir, 100);

function onStore(e) {
  if (e.kind === "reset" || !view.user) return refreshAll();
  if (e.user !== view.user) {
    if (![...$("user").options].some((o) => o.value === e.user)) loadUsers();
    return;
  }
  const body = $("timeline");
  if (body.querySelector("td[colspan]")) body.replaceChildren();
  body.prepend(timelineRow(e, true));
  while (body.children.length > TIMELINE) body.lastChild.remove();
  if (e.folder === view.folder || e.kind === "external") refreshDisk();
}

async function onSession(msg) {
  if (msg.action === "close") {
    const c = cards.get(msg.session.id);
    if (c) c.closed = true;
  } else {
    await track(msg.session);
  }
  renderCards();
}

function onTrace(line) {
  const c = cards.get(line.session);
  if (!c) return;
  c.lines.push(line);
  if (c.lines.length > TAIL) c.lines.shift();
  const box = document.querySelector(`.mini-session[data-session="${CSS.escape(line.session)}"] .transcript`);
  if (box) stickToBottom(box, () => box.append(transcriptLine(line)));
  else if (c.info.user === view.user) renderCards();
}

async function refreshAll() {
  await loadUsers();
  await loadFolders();
  view.files = new Map();
  await Promise.all([loadMaildir(), loadTimeline(), loadSessions()]);
  history.replaceState(null, "", view.user ? `#user=${enc(view.user)}` : "#");
}

document.addEventListener("DOMContentLoaded", () => {
  $("user").addEventListener("change", () => {
    view.user = $("user").value;
    view.folder = "INBOX";
    refreshAll();
  });
  $("folder").addEventListener("change", () => {
    view.folder = $("folder").value;
    view.files = new Map();
    loadMaildir();
  });
  liveStream({}, { open: refreshAll, store: onStore, session: onSession, trace: onTrace, resync: refreshAll });
});
