// pushpop dashboard: plain JavaScript on the public HTTP API (fetch), no framework.
// Data is put into the page with textContent only, never parsed as HTML.
"use strict";

const KEY_STORAGE = "pushpop-admin-key"; // sessionStorage: this tab only, gone when it closes
const REFRESH_MS = 3000;
const PAGE = 1000; // queues per GET /queues call
const PEEK = 20;

const $ = (id) => document.getElementById(id);
const state = { sortKey: "queue_id", sortDir: 1, queues: [], next: null, route: null,
                busy: false, again: false, prompting: false };

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function adminKey() { return sessionStorage.getItem(KEY_STORAGE); }

// One call of the public API; a 401 opens the key prompt, any error raises ApiError.
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = adminKey();
  if (key) headers.Authorization = "Bearer " + key; // a header, never the URL
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, "UNREACHABLE", "the service did not answer (" + err.message + ")");
  }
  let data = null;
  try { data = await response.json(); } catch (err) { data = null; }
  if (response.ok) return data;
  const error = (data && data.error) || {};
  const failure = new ApiError(response.status, error.code || "HTTP_" + response.status,
                               error.message || response.statusText);
  if (response.status === 401) askForKey(key ? failure.message : "");
  throw failure;
}

const path = {
  queue: (id) => "/queue/" + encodeURIComponent(id),
};

// ---- the key prompt ---------------------------------------------------------------
function askForKey(problem) {
  const dialog = $("key-dialog");
  const error = $("key-error");
  error.hidden = !problem;
  error.textContent = problem ? "That key was refused: " + problem : "";
  if (!dialog.open) {
    state.prompting = true;
    $("key-input").value = "";
    dialog.showModal();
  }
}

function setupKeyDialog() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    $("key-dialog").close();
    state.prompting = false;
    refresh();
  });
  $("key-cancel").addEventListener("click", () => {
    $("key-dialog").close();
    state.prompting = false;
  });
  $("key-button").addEventListener("click", () => askForKey(""));
}

// ---- helpers ------------------------------------------------------------------------
function showError(err) {
  const box = $("error");
  if (!err || (err.status === 401)) { box.hidden = true; return; }
  box.textContent = (err.status ? err.status + " " : "") + err.code + ": " + err.message;
  box.hidden = false;
}

function age(enqueuedAt) {
  if (enqueuedAt === null || enqueuedAt === undefined) return "-";
  let s = Math.max(0, Date.now() / 1000 - enqueuedAt);
  if (s < 60) return Math.round(s) + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  if (s < 86400) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function setStatus(text) { $("status").textContent = text; }

// ---- the queues table ---------------------------------------------------------------
async function loadQueues(append) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  const prefix = $("prefix").value.trim();
  if (prefix) params.set("prefix", prefix);
  if (append && state.next) params.set("after", state.next);
  const page = await api("GET", "/queues?" + params);
  state.queues = append ? state.queues.concat(page.queues) : page.queues;
  state.next = page.next;
  renderQueues();
}

function sortedQueues() {
  const { sortKey, sortDir } = state;
  return state.queues.slice().sort((a, b) => {
    let x = a[sortKey], y = b[sortKey];
    if (sortKey === "oldest_enqueued_at") { // oldest first when "ascending" by age
      x = x === null ? Infinity : x;
      y = y === null ? Infinity : y;
    }
    if (x < y) return -sortDir;
    if (x > y) return sortDir;
    return a.queue_id < b.queue_id ? -1 : 1;
  });
}

function renderQueues() {
  const body = $("queues").querySelector("tbody");
  const rows = sortedQueues().map((q) => {
    const tr = document.createElement("tr");
    const link = document.createElement("a");
    link.href = "#/queue/" + encodeURIComponent(q.queue_id);
    link.textContent = q.queue_id;
    cell(tr, "").appendChild(link);
    cell(tr, q.depth, "num");
    cell(tr, q.in_flight, "num");
    cell(tr, q.delayed, "num");
    cell(tr, q.locks, "num");
    cell(tr, age(q.oldest_enqueued_at), "num");
    return tr;
  });
  body.replaceChildren(...rows);
  const prefix = $("prefix").value.trim();
  $("empty").hidden = state.queues.length > 0;
  $("empty-prefix").textContent = prefix ? " under \u201c" + prefix + "\u201d" : "";
  $("count").textContent = state.queues.length + " queue(s)" + (state.next ? " so far" : "");
  $("more").hidden = !state.next;
  for (const th of $("queues").querySelectorAll("th")) {
    th.setAttribute("aria-sort", th.dataset.key === state.sortKey
      ? (state.sortDir > 0 ? "ascending" : "descending") : "none");
  }
}

function setupQueuesTable() {
  for (const th of $("queues").querySelectorAll("th")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.key;
      if (state.sortKey === key) state.sortDir = -state.sortDir;
      else { state.sortKey = key; state.sortDir = key === "queue_id" ? 1 : -1; }
      renderQueues();
    });
  }
  let typing = null;
  $("prefix").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => refresh(), 250);
  });
  $("more").addEventListener("click", () => guarded(() => loadQueues(true)));
}

// ---- one queue ----------------------------------------------------------------------
function deadLetterOf(id, settings) {
  return (settings && settings.dead_letter_queue) || id + "-deadletter";
}

async function optional(promise) {
  try { return await promise; } catch (err) {
    if (err.status === 404 || err.status === 405) return null; // endpoint not in this build
    throw err;
  }
}

async function loadQueue(id) {
  const [stats, peek, settings] = await Promise.all([
    api("GET", path.queue(id)),
    optional(api("GET", path.queue(id) + "/items?limit=" + PEEK)),
    optional(api("GET", path.queue(id) + "/settings")),
  ]);
  const dlq = deadLetterOf(id, settings);
  const dlqStats = await api("GET", path.queue(dlq));
  if (state.route !== id) return; // the user went elsewhere meanwhile
  $("q-title").textContent = id;
  $("q-depth").textContent = stats.depth;
  $("q-in-flight").textContent = stats.in_flight;
  $("q-delayed").textContent = stats.delayed === undefined ? "-" : stats.delayed;
  $("q-locks").textContent = stats.locks;
  $("q-oldest").textContent = age(stats.oldest_enqueued_at);

  const priorities = Object.keys(stats.by_priority || {}).sort((a, b) => a - b);
  const rows = priorities.map((p) => {
    const tr = document.createElement("tr");
    cell(tr, p);
    cell(tr, stats.by_priority[p], "num");
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    cell(tr, "no waiting item").colSpan = 2;
    rows.push(tr);
  }
  $("by-priority").querySelector("tbody").replaceChildren(...rows);

  const items = peek ? peek.items : [];
  const list = items.map((it) => {
    const li = document.createElement("li");
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = "id " + it.id + " \u00b7 priority " + it.priority + " \u00b7 waiting "
      + age(it.enqueued_at) + (it.deliveries > 1 ? " \u00b7 delivered " + it.deliveries + "\u00d7" : "");
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(it.item, null, 1);
    li.append(meta, pre);
    return li;
  });
  if (!peek) list.push(Object.assign(document.createElement("li"),
    { textContent: "peek is not available on this server" }));
  $("peek").replaceChildren(...list);

  if (settings && !$("settings").contains(document.activeElement)) {
    $("s-max").value = settings.max_deliveries === null ? "" : settings.max_deliveries;
    $("s-dlq").value = settings.dead_letter_queue === null ? "" : settings.dead_letter_queue;
    $("s-dlq").placeholder = id + "-deadletter";
  }
  $("settings").hidden = !settings;
  const link = $("dlq-link");
  link.textContent = dlq;
  link.href = "#/queue/" + encodeURIComponent(dlq);
  $("dlq-depth").textContent = dlqStats.depth;
  $("redrive").disabled = dlqStats.depth === 0;
  $("redrive").dataset.dlq = dlq;
  $("redrive").dataset.depth = dlqStats.depth;
  $("purge").dataset.depth = stats.depth;
}

function setupQueueView() {
  $("settings").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = state.route;
    const max = $("s-max").value.trim();
    const dlq = $("s-dlq").value.trim();
    const body = { max_deliveries: max ? Number(max) : null, dead_letter_queue: dlq || null };
    guarded(async () => {
      await api("PUT", path.queue(id) + "/settings", body);
      $("settings-status").textContent = "saved";
      setTimeout(() => { $("settings-status").textContent = ""; }, 2000);
      await loadQueue(id);
    });
  });
  $("redrive").addEventListener("click", () => {
    const id = state.route;
    const dlq = $("redrive").dataset.dlq;
    const n = $("redrive").dataset.depth;
    if (!window.confirm("Move the " + n + " item(s) waiting in " + dlq + " back to " + id + "?")) return;
    guarded(async () => {
      const result = await api("POST", path.queue(dlq) + "/redrive", { to: id });
      $("redrive-status").textContent = "moved " + result.moved + " item(s)";
      await loadQueue(id);
    });
  });
  $("purge").addEventListener("click", () => {
    const id = state.route;
    const n = $("purge").dataset.depth;
    if (!window.confirm("Purge " + id + "? Its " + n + " waiting item(s) and its locks are deleted for good.")) return;
    guarded(async () => {
      const result = await api("DELETE", path.queue(id));
      setStatus("purged " + result.purged + " item(s) from " + id);
      await loadQueue(id);
    });
  });
}

// ---- routing and refresh ------------------------------------------------------------
function currentRoute() {
  const m = location.hash.match(/^#\/queue\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

async function guarded(work) {
  try {
    await work();
    showError(null);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    showError(err);
  }
}

async function refresh() {
  if (state.prompting) return;
  if (state.busy) { state.again = true; return; } // e.g. the hash changed mid-refresh
  state.busy = true;
  state.route = currentRoute();
  $("queues-view").hidden = state.route !== null;
  $("queue-view").hidden = state.route === null;
  try {
    await guarded(async () => {
      if (state.route === null) await loadQueues(false);
      else await loadQueue(state.route);
      setStatus("updated " + new Date().toLocaleTimeString());
    });
  } finally {
    state.busy = false;
  }
  if (state.again) {
    state.again = false;
    refresh();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupKeyDialog();
  setupQueuesTable();
  setupQueueView();
  window.addEventListener("hashchange", () => {
    $("redrive-status").textContent = "";
    refresh();
  });
  setInterval(() => { if ($("auto").checked && !document.hidden) refresh(); }, REFRESH_MS);
  refresh();
});
