// openrealtime inspector: plain JavaScript, no build step, no dependencies.
"use strict";

const BASE = document.body.dataset.base;
const MAX_ROWS = 2000;
const POLL_MS = 2000;

const $ = (sel) => document.querySelector(sel);
const state = { id: null, ws: null, config: null, loaded: false, lastChanged: new Set(), retry: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clock(t) {
  if (!t) return "";
  const d = new Date(t * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function clockShort(t) {
  return clock(t).slice(0, 8);
}

function json(value) {
  return JSON.stringify(value);
}

function short(value, limit = 80) {
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value);
  if (text === undefined) return "undefined";
  return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
}

// --- Sessions list ---------------------------------------------------------------

async function refreshSessions() {
  let data;
  try {
    const response = await fetch(`${BASE}/api/sessions`, { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) { location.reload(); return; }
    data = await response.json();
  } catch (err) {
    $("#status").textContent = "server unreachable";
    return;
  }
  const sessions = data.sessions;
  const live = sessions.filter((s) => s.live).length;
  $("#status").textContent = `${live} live, ${sessions.length - live} recent`;
  $("#sessions-loading").hidden = true;
  $("#no-sessions").hidden = sessions.length > 0;
  const body = $("#sessions tbody");
  body.replaceChildren(...sessions.map((s) => {
    const closed = s.live ? "" : `${clockShort(s.closed)} (${s.close_code ?? "?"})`;
    const row = el("tr", { "data-id": s.id, class: (s.id === state.id ? "selected " : "") + (s.live ? "live" : "closed") },
      el("td", {}, el("span", { class: "dot", title: s.live ? "live" : "closed" })),
      el("td", { class: "mono", title: s.id, text: s.id }),
      el("td", { text: s.model || "" }),
      el("td", { text: s.kind }),
      el("td", { class: "mono", text: clockShort(s.opened) }),
      el("td", { class: "mono", title: s.close_reason || "", text: closed }),
      el("td", { class: "mono counts", text: `${s.events_in} / ${s.events_out}` }));
    row.addEventListener("click", () => { location.hash = s.id; });
    return row;
  }));
  if (!state.id && sessions.length && !location.hash) location.hash = sessions[0].id;
}

// --- One session -----------------------------------------------------------------

function select(id) {
  if (state.id === id && state.ws) return;
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  clearTimeout(state.retry);
  state.id = id;
  state.config = null;
  state.loaded = false;
  for (const row of document.querySelectorAll("#sessions tr")) {
    row.classList.toggle("selected", row.dataset.id === id);
  }
  $("#empty").hidden = true;
  $("#detail").hidden = false;
  $("#detail-title").textContent = id;
  // Until the session's snapshot arrives, say so (not "No session.update yet.").
  $("#detail-meta").textContent = "loading…";
  $("#config-tree").replaceChildren(el("p", { class: "muted", text: "loading…" }));
  $("#updates").replaceChildren();
  $("#updates-count").textContent = "";
  $("#no-updates").textContent = "loading…";
  $("#no-updates").hidden = false;
  $("#log").replaceChildren();
  connect(id);
}

function connect(id) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${BASE}/api/sessions/${encodeURIComponent(id)}/live`);
  state.ws = ws;
  setLogState("connecting", "");
  ws.onmessage = (message) => receive(JSON.parse(message.data));
  ws.onopen = () => setLogState("live", "live");
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (!state.loaded) {  // closed before the snapshot: no more "loading…"
      const why = event.reason || "not available";
      $("#detail-meta").textContent = why;
      $("#config-tree").replaceChildren(el("p", { class: "muted", text: why }));
      $("#no-updates").textContent = why;
    }
    if (event.code === 1013) { connect(id); return; }
    setLogState(event.reason || "disconnected", "");
    if (event.code !== 1000) state.retry = setTimeout(() => { if (state.id === id) connect(id); }, POLL_MS);
  };
}

function setLogState(text, cls) {
  const badge = $("#log-state");
  badge.textContent = text;
  badge.className = "badge " + cls;
}

function receive(message) {
  const data = message.data;
  switch (message.kind) {
    case "snapshot":
      state.loaded = true;
      renderMeta(data.session);
      renderConfig(data.config);
      $("#updates").replaceChildren();
      $("#no-updates").textContent = "No session.update yet.";
      $("#no-updates").hidden = false;
      for (const update of data.updates) addUpdate(update);
      $("#log").replaceChildren();
      for (const entry of data.events) addEntry(entry);
      break;
    case "log": addEntry(data); break;
    case "update": addUpdate(data); break;
    case "config": renderConfig(data); break;
    case "meta":
      renderMeta(data);
      if (!data.live) { setLogState("closed", "closed"); }
      break;
  }
}

function renderMeta(s) {
  const parts = [`${s.kind}`, s.model ? `model ${s.model}` : null, `opened ${clock(s.opened)}`,
    s.live ? "live" : `closed ${clock(s.closed)} with code ${s.close_code ?? "?"}${s.close_reason ? ` (${s.close_reason})` : ""}`,
    `${s.events_in} events in, ${s.events_out} out`];
  $("#detail-meta").textContent = parts.filter(Boolean).join(" · ");
  if (!s.live) setLogState("closed", "closed");
}

// --- Config tree -----------------------------------------------------------------

function renderConfig(config) {
  const root = $("#config-tree");
  const open = new Set();
  const known = root.childElementCount > 0;
  for (const d of root.querySelectorAll("details[data-path]")) if (d.open) open.add(d.dataset.path);
  state.config = config;
  if (config === null || config === undefined) { root.replaceChildren(el("p", { class: "muted", text: "not known yet" })); return; }
  root.replaceChildren(treeNode(null, config, "", 0, known ? open : null));
}

function treeNode(key, value, path, depth, open) {
  const label = key === null ? null : el("span", { class: "key", text: key });
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    const onChangedPath = [...state.lastChanged].some((c) => path === "" || c.startsWith(path + ".") || c.startsWith(path + "["));
    const isOpen = (open ? open.has(path) : depth < 2) || onChangedPath;
    const summary = el("summary", {}, label, label ? ": " : null,
      el("span", { class: "muted", text: Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}` }));
    const list = el("ul", {}, ...entries.map(([k, v]) => {
      const child = Array.isArray(value) ? `${path}[${k}]` : (path ? `${path}.${k}` : String(k));
      return el("li", {}, treeNode(Array.isArray(value) ? `[${k}]` : k, v, child, depth + 1, open));
    }));
    const details = el("details", { "data-path": path, open: isOpen }, summary, list);
    if (state.lastChanged.has(path)) details.classList.add("changed");
    return details;
  }
  const leaf = el("div", { class: "leaf", "data-path": path }, label, label ? ": " : null,
    el("span", { class: "v-" + (value === null ? "null" : typeof value), text: json(value) }));
  if (state.lastChanged.has(path)) leaf.classList.add("changed");
  return leaf;
}

// A dotted path that wraps only after its dots on a narrow window.
function breakable(path) {
  return path.split(".").flatMap((part, i) => (i ? [".", el("wbr"), part] : [part]));
}

// --- session.update timeline -----------------------------------------------------

function addUpdate(update) {
  const list = $("#updates");
  const item = el("li", { class: `update ${update.status}`, "data-seq": update.seq },
    el("div", { class: "update-head" },
      el("span", { class: "mono", text: clock(update.t) }),
      el("span", { class: `badge ${update.status}`, text: update.status }),
      update.event_id ? el("span", { class: "mono muted", text: update.event_id }) : null));
  if (update.status === "accepted") {
    const changes = update.changes || [];
    if (!changes.length) item.append(el("p", { class: "muted", text: "no change" }));
    else {
      const table = el("table", { class: "diff" });
      for (const c of changes) {
        const symbol = { added: "+", removed: "−", changed: "~" }[c.op];
        const values = c.op === "added" ? el("span", { class: "new", text: short(c.new) })
          : c.op === "removed" ? el("span", { class: "old", text: short(c.old) })
          : el("span", {}, el("span", { class: "old", text: short(c.old) }), " → ", el("span", { class: "new", text: short(c.new) }));
        table.append(el("tr", { class: `diff-row ${c.op}` },
          el("td", { class: "op", text: symbol }), el("td", { class: "mono path" }, ...breakable(c.path)), el("td", { class: "mono" }, values)));
      }
      item.append(table);
    }
    state.lastChanged = new Set(changes.map((c) => c.path));
    if (state.config) renderConfig(state.config);
  } else {
    const e = update.error || {};
    item.append(el("div", { class: "error" },
      el("code", { text: e.code ?? e.type ?? "error" }),
      e.param ? el("code", { class: "param", text: e.param }) : null,
      el("span", { class: "message", text: e.message || "" })));
  }
  item.append(el("details", { class: "request" }, el("summary", { text: "request" }),
    el("pre", { text: JSON.stringify(update.request, null, 2) })));
  list.append(item);
  $("#no-updates").hidden = list.childElementCount > 0;
  $("#updates-count").textContent = `(${list.childElementCount})`;
}

// --- Event log -------------------------------------------------------------------

function summarize(entry) {
  if ("audio_bytes" in entry) {
    return `${entry.audio_bytes} bytes audio` + (entry.count > 1 ? ` (${entry.count} events)` : "");
  }
  const e = entry.event || {};
  switch (entry.type) {
    case "error": return `${e.error?.code ?? e.error?.type ?? ""}${e.error?.param ? " " + e.error.param : ""}: ${e.error?.message ?? ""}`;
    case "session.update": return short(e.session, 120);
    case "response.output_text.delta":
    case "response.output_audio_transcript.delta":
    case "response.function_call_arguments.delta":
    case "conversation.item.input_audio_transcription.delta":
      return short(e.delta, 120);
    case "conversation.item.create":
    case "conversation.item.added":
    case "conversation.item.done":
    case "response.output_item.added":
    case "response.output_item.done": {
      const item = e.item || {};
      return [item.type, item.role, item.name, item.id].filter(Boolean).join(" ");
    }
    case "response.done": return `${e.response?.status ?? ""}`;
    case "(invalid JSON)": return short(e.text, 120);
    case "(binary frame)": return `${e.bytes} bytes`;
    default: return "";
  }
}

function addEntry(entry) {
  const log = $("#log");
  const dir = entry.dir === "<" ? "client" : "server";
  const row = el("li", { class: `entry ${dir}`, "data-seq": entry.seq, "data-type": entry.type },
    el("span", { class: "mono time", text: clock(entry.t) }),
    el("span", { class: `dir ${dir}`, title: dir, text: entry.dir }),
    el("span", { class: "type", text: entry.type }),
    el("span", { class: "summary", text: summarize(entry) }));
  if ("audio_bytes" in entry) row.classList.add("audio");
  else {
    row.addEventListener("click", () => {
      const pre = row.querySelector("pre");
      if (pre) pre.remove();
      else row.append(el("pre", { text: JSON.stringify(entry.event, null, 2) }));
    });
  }
  const existing = log.querySelector(`li[data-seq="${entry.seq}"]`);
  if (existing) existing.replaceWith(row);
  else {
    log.append(row);
    while (log.childElementCount > MAX_ROWS) log.firstElementChild.remove();
  }
  if ($("#follow").checked) log.scrollTop = log.scrollHeight;  // the log, not the page
}

// --- Start -----------------------------------------------------------------------

function fromHash() {
  const id = decodeURIComponent(location.hash.slice(1));
  if (id) select(id);
}

window.addEventListener("hashchange", fromHash);
refreshSessions().then(fromHash);
setInterval(refreshSessions, POLL_MS);
