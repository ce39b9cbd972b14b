// Mailbox browser: users -> folders -> messages -> one message, updated live.
"use strict";

const PAGE = 50;
const state = { user: null, folder: "INBOX", offset: 0, q: "", uid: null, tab: null, message: null };
let knownUids = new Set();

const $ = (id) => document.getElementById(id);

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  state.user = p.get("user");
  state.folder = p.get("folder") || "INBOX";
  state.uid = p.get("uid") ? Number(p.get("uid")) : null;
}

function writeHash() {
  const p = new URLSearchParams();
  if (state.user) p.set("user", state.user);
  if (state.folder !== "INBOX") p.set("folder", state.folder);
  if (state.uid) p.set("uid", state.uid);
  history.replaceState(null, "", "#" + p.toString());
}

async function loadUsers() {
  const { users } = await api("/users");
  const list = $("users");
  list.replaceChildren();
  if (!users.length) list.append(h("li", { class: "lesson" }, "No users yet."));
  if (!state.user && users.length) state.user = users[0].name;
  for (const u of users) {
    list.append(
      h(
        "li",
        { class: u.name === state.user ? "selected" : "", dataset: { user: u.name }, onclick: () => pickUser(u.name) },
        h("span", {}, u.name),
        h("span", { class: u.unseen ? "count unseen" : "count" }, u.unseen || u.inbox),
      ),
    );
  }
  if (state.user && !users.some((u) => u.name === state.user)) {
    state.user = users.length ? users[0].name : null;
  }
}

async function loadFolders() {
  const list = $("folders");
  list.replaceChildren();
  if (!state.user) return;
  let folders;
  try {
    ({ folders } = await api(`/users/${enc(state.user)}/folders`));
  } catch (err) {
    list.append(h("li", { class: "lesson" }, err.message));
    return;
  }
  if (!folders.some((f) => f.name === state.folder)) state.folder = "INBOX";
  for (const f of folders) {
    const depth = f.name.split("/").length - 1;
    const label = f.name.split("/").pop();
    list.append(
      h(
        "li",
        {
          class: (f.name === state.folder ? "selected " : "") + (depth ? "indent" : ""),
          dataset: { folder: f.name },
          title: f.special_use || "",
          onclick: () => pickFolder(f.name),
        },
        h("span", {}, label),
        h("span", { class: f.unseen ? "count unseen" : "count" }, f.unseen || f.messages),
      ),
    );
  }
}

async function loadMessages(highlightNew = false) {
  const list = $("messages");
  if (!state.user) {
    list.replaceChildren(h("li", { class: "empty" }, "Add a user or deliver mail to see it here."));
    return;
  }
  const params = new URLSearchParams({ offset: state.offset, limit: PAGE });
  if (state.q) params.set("q", state.q);
  let page;
  try {
    page = await api(`${folderPath(state.user, state.folder)}/messages?${params}`);
  } catch (err) {
    list.replaceChildren(h("li", { class: "empty" }, err.message));
    return;
  }
  const items = page.messages.map((m) => {
    const unseen = !m.flags.includes("\\Seen");
    const fresh = highlightNew && !knownUids.has(m.uid);
    return h(
      "li",
      {
        class: [unseen ? "unseen" : "", m.uid === state.uid ? "selected" : "", fresh ? "fresh" : ""].join(" "),
        dataset: { uid: m.uid },
        onclick: () => openMessage(m.uid),
      },
      h(
        "div",
        { class: "row1" },
        h("span", { class: "from" }, m.from || "(no sender)"),
        h("span", { class: "when" }, fmtWhen(m.internal_date)),
      ),
      h(
        "div",
        { class: "row2" },
        h(
          "span",
          { class: "subject" },
          m.flags.includes("\\Flagged") ? h("span", { class: "flag" }, "★ ") : null,
          scanBadge(m.scan),
          m.subject || "(no subject)",
        ),
        h("span", { class: "size" }, fmtSize(m.size)),
      ),
    );
  });
  knownUids = new Set(page.messages.map((m) => m.uid));
  list.replaceChildren(...items);
  if (!items.length) list.append(h("li", { class: "empty" }, state.q ? "No message matches." : "This folder is empty."));
  $("total").textContent = page.total;
  const last = Math.min(page.offset + page.messages.length, page.total);
  $("page-info").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "";
  $("newer").disabled = page.offset === 0;
  $("older").disabled = last >= page.total;
}

function showTab(name) {
  state.tab = name;
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("on", b.dataset.tab === name);
  for (const t of ["html", "text", "headers", "raw"]) $(`tab-${t}`).hidden = t !== name;
  if (name === "raw" && state.message && !$("raw-source").dataset.loaded) loadRaw();
}

async function loadRaw() {
  const pre = $("raw-source");
  const resp = await fetch(state.message.raw_url);
  pre.textContent = await resp.text();
  pre.dataset.loaded = "1";
}

function renderMessage(m) {
  state.message = m;
  $("no-message").hidden = true;
  $("gone-notice").hidden = true;
  $("message").hidden = false;
  $("msg-subject").textContent = showBidi(m.subject || "(no subject)");
  const meta = $("msg-meta");
  meta.replaceChildren();
  for (const [label, value] of [["From", m.from], ["To", m.to], ["Cc", m.cc], ["Date", m.date], ["Size", fmtSize(m.size)]]) {
    if (value) meta.append(h("dt", {}, label), h("dd", {}, value));
  }
  renderFlags(m.flags);
  renderScan(m.scan);
  $("btn-download").href = `${m.raw_url}?download=1`;
  $("text-body").textContent = m.text === null ? "(this message has no text part)" : m.text;
  const table = $("headers");
  table.replaceChildren(...m.headers.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))));
  const raw = $("raw-source");
  raw.textContent = "";
  delete raw.dataset.loaded;
  const frame = $("html-frame");
  const htmlTab = document.querySelector('.tabs button[data-tab="html"]');
  htmlTab.hidden = !m.has_html;
  frame.src = m.has_html ? m.html_url : "about:blank";
  const atts = $("attachments");
  atts.replaceChildren(
    ...m.attachments.map((a) =>
      h(
        "li",
        {},
        h(
          "a",
          { href: `${API}${folderPath(state.user, state.folder)}/messages/${m.uid}/attachments/${a.index}`, download: "" },
          h("span", { class: "clip" }, "⇩"),
          h("span", { class: "name" }, a.filename),
          h("span", { class: "size" }, fmtSize(a.size)),
        ),
      ),
    ),
  );
  atts.hidden = !m.attachments.length;
  showTab(state.tab === "raw" || state.tab === "headers" ? state.tab : m.has_html ? "html" : "text");
}

// What scanning at delivery found: a badge in the list, and the score, rules and virus in the view.
function scanBadge(scan) {
  if (!scan) return null;
  if (scan.virus) return h("span", { class: "badge virus", title: scan.virus }, "Virus");
  if (scan.junk) return h("span", { class: "badge junk", title: `spam score ${scan.spam_score}` }, "Junk");
  return null;
}

function renderScan(scan) {
  const box = $("msg-scan");
  box.hidden = !scan;
  if (!scan) return box.replaceChildren();
  const parts = [];
  const badge = scanBadge(scan);
  if (badge) parts.push(badge);
  if (scan.spam_status === "unscanned") parts.push(h("span", { class: "verdict" }, "Spam: not scanned (the engine did not answer)"));
  else if (scan.spam_status) parts.push(h("span", { class: "verdict" }, `Spam score ${scan.spam_score.toFixed(1)} (junk at ${scan.spam_threshold.toFixed(1)})`));
  if (scan.virus_status === "infected") parts.push(h("span", { class: "verdict bad" }, `Virus: ${scan.virus}`));
  else if (scan.virus_status === "clean") parts.push(h("span", { class: "verdict" }, "No virus found"));
  else if (scan.virus_status) parts.push(h("span", { class: "verdict" }, "Virus: not scanned (the engine did not answer)"));
  const rules = scan.rules.map((r) =>
    h("tr", {}, h("td", { class: "score" }, r.score.toFixed(1)), h("td", { class: "rule" }, r.name), h("td", {}, r.description)),
  );
  box.replaceChildren(h("div", { class: "verdicts" }, ...parts), rules.length ? h("table", { class: "rules" }, ...rules) : null);
}

function renderFlags(flags) {
  state.message.flags = flags;
  $("msg-flags").replaceChildren(...flags.map((f) => h("span", { class: "flag-chip" }, f)));
  const seen = flags.includes("\\Seen");
  const flagged = flags.includes("\\Flagged");
  $("btn-seen").textContent = seen ? "Mark unread" : "Mark read";
  $("btn-flag").textContent = flagged ? "★ Unflag" : "☆ Flag";
  $("btn-flag").classList.toggle("on", flagged);
}

async function openMessage(uid) {
  state.uid = uid;
  writeHash();
  for (const li of $("messages").children) li.classList.toggle("selected", Number(li.dataset.uid) === uid);
  try {
    renderMessage(await api(`${folderPath(state.user, state.folder)}/messages/${uid}`));
  } catch (err) {
    if (err.status === 404) showGone();
    else throw err;
  }
}

function showGone() {
  $("message").hidden = true;
  $("gone-notice").hidden = false;
  state.message = null;
}

function closeMessage() {
  state.uid = null;
  state.message = null;
  $("message").hidden = true;
  $("gone-notice").hidden = true;
  $("no-message").hidden = false;
  writeHash();
}

async function toggleFlag(flag) {
  if (!state.message) return;
  const on = state.message.flags.includes(flag);
  const body = on ? { remove: [flag] } : { add: [flag] };
  const result = await api(`${folderPath(state.user, state.folder)}/messages/${state.message.uid}`, { method: "PATCH", json: body });
  renderFlags(result.flags);
}

async function deleteMessage() {
  if (!state.message) return;
  await api(`${folderPath(state.user, state.folder)}/messages/${state.message.uid}`, { method: "DELETE" });
  closeMessage();
  await refreshAll();
}

async function pickUser(name) {
  state.user = name;
  state.folder = "INBOX";
  state.offset = 0;
  closeMessage();
  await refreshAll();
}

async function pickFolder(name) {
  state.folder = name;
  state.offset = 0;
  closeMessage();
  await refreshAll();
}

async function refreshAll(highlightNew = false) {
  await loadUsers();
  await loadFolders();
  await loadMessages(highlightNew);
  writeHash();
}

// A change for the user on screen: re-read what it can have changed, without a reload.
let pending = [];
const onChange = debounce(async () => {
  const events = pending;
  pending = [];
  await refreshAll(true);
  if (state.message) {
    const mine = events.filter((e) => e.user === state.user && e.folder === state.folder);
    const gone = mine.some((e) => ["expunged", "moved"].includes(e.kind) && e.uids.includes(state.message.uid));
    if (gone) showGone();
    else if (mine.some((e) => e.kind === "flags" && e.uids.includes(state.message.uid))) {
      try {
        const m = await api(`${folderPath(state.user, state.folder)}/messages/${state.message.uid}`);
        renderFlags(m.flags);
      } catch (err) {
        if (err.status === 404) showGone();
      }
    }
  }
}, 120);

function queueChange(event) {
  pending.push(event);
  onChange();
}

document.addEventListener("DOMContentLoaded", async () => {
  readHash();
  $("search").addEventListener(
    "input",
    debounce(() => {
      state.q = $("search").value.trim();
      state.offset = 0;
      loadMessages();
    }, 200),
  );
  $("newer").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE);
    loadMessages();
  });
  $("older").addEventListener("click", () => {
    state.offset += PAGE;
    loadMessages();
  });
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("btn-seen").addEventListener("click", () => toggleFlag("\\Seen"));
  $("btn-flag").addEventListener("click", () => toggleFlag("\\Flagged"));
  $("btn-delete").addEventListener("click", deleteMessage);
  $("add-user").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    $("add-user-error").textContent = "";
    try {
      await api("/users", { method: "POST", json: { name: form.name.value.trim(), password: form.password.value } });
      const name = form.name.value.trim();
      form.reset();
      await pickUser(name);
    } catch (err) {
      $("add-user-error").textContent = err.message;
    }
  });
  await refreshAll();
  if (state.uid) openMessage(state.uid);
  liveStream(
    { trace: "0" },
    {
      store: (e) => {
        if (e.kind === "reset" || e.user === state.user || !state.user) queueChange(e);
        else loadUsers();
      },
      resync: () => queueChange({ kind: "resync", user: "", folder: "", uids: [] }),
      open: () => refreshAll(),
    },
  );
});
