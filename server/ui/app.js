// The modrun inspector: plain JS, no build step, no external assets. The
// token lives in sessionStorage: this tab only.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("modrun.token") || "";
let targets = []; // {pkg, target, kind}

async function api(path, opts = {}) {
  const res = await fetch(path, {
    ...opts,
    headers: { ...(opts.headers || {}), Authorization: "Bearer " + token, "Content-Type": "application/json" },
  });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
  if (res.status === 401) { showLogin("The token was refused."); throw new Error("unauthorized"); }
  return { status: res.status, body };
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function showLogin(msg) {
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = msg || "";
}

async function health() {
  try {
    const res = await fetch("/readyz");
    const b = await res.json();
    $("health").textContent = b.status + (b.reason ? ": " + b.reason : "");
    $("health").className = "pill " + (res.ok ? "ok" : "bad");
  } catch (e) {
    $("health").textContent = "unreachable";
    $("health").className = "pill bad";
  }
}

async function loadPackages() {
  const { body } = await api("/v1/packages");
  const box = $("packages");
  box.replaceChildren();
  targets = [];
  for (const p of body) {
    const div = el("div", { class: "pkg" }, el("h3", {}, p.name + "@" + p.version, " ", el("span", { class: "sub" }, p.description || "")));
    for (const m of p.modules) {
      const row = el("div", { class: "mod" }, m.name + " (" + m.kind + ") ");
      const names = m.kind === "query" ? [m.name] : m.functions.map((f) => m.name + "." + f);
      for (const t of names) {
        targets.push({ pkg: p.name, target: t, kind: m.kind });
        row.append(el("span", { class: "fn", "data-target": p.name + " " + t, onclick: () => pick(p.name, t) }, t));
      }
      div.append(row);
    }
    if (p.schedules.length) {
      div.append(el("div", { class: "mod" }, "schedules: " + p.schedules.map((s) => (s.every ? "every " + s.every : "cron " + s.cron) + " → " + s.run).join("; ")));
    }
    box.append(div);
  }
  const sel = $("run-target");
  sel.replaceChildren(...targets.map((t, i) => el("option", { value: i }, t.pkg + " " + t.target)));
  updateInputLabel();
  if (!$("store-app").value && body.length) $("store-app").value = body[0].name;
}

function pick(pkg, target) {
  const i = targets.findIndex((t) => t.pkg === pkg && t.target === target);
  if (i >= 0) { $("run-target").value = i; updateInputLabel(); }
}

function updateInputLabel() {
  const t = targets[$("run-target").value];
  const q = t && t.kind === "query";
  $("run-input-label").firstChild.textContent = q ? "Params (a JSON object) " : "Arguments (a JSON array) ";
  const v = $("run-input").value.trim();
  if (q && (v === "[]" || v === "")) $("run-input").value = "{}";
  if (!q && (v === "{}" || v === "")) $("run-input").value = "[]";
}

async function run(ev) {
  ev.preventDefault();
  const t = targets[$("run-target").value];
  if (!t) return;
  const out = $("run-output");
  out.hidden = false;
  let input;
  try { input = JSON.parse($("run-input").value || (t.kind === "query" ? "{}" : "[]")); } catch (e) { out.textContent = "not JSON: " + e.message; return; }
  const body = t.kind === "query" ? { params: input } : { args: input };
  if ($("run-app").value) body.app = $("run-app").value;
  out.textContent = "running " + t.target + " …";
  $("run-button").disabled = true;
  try {
    const { status, body: res } = await api("/v1/run/" + encodeURIComponent(t.pkg) + "/" + encodeURIComponent(t.target), { method: "POST", body: JSON.stringify(body) });
    out.textContent = "HTTP " + status + "\n" + JSON.stringify(res, null, 2);
    refreshRuns();
  } finally {
    $("run-button").disabled = false;
  }
}

async function refreshRuns() {
  const { body } = await api("/v1/runs?limit=30");
  const tb = $("runs").tBodies[0];
  tb.replaceChildren(...body.map((r) => el("tr", { "data-id": r.id, onclick: () => detail(r.id) },
    el("td", {}, el("code", {}, r.id)), el("td", {}, r.package + " " + r.target), el("td", {}, r.app), el("td", {}, r.trigger),
    el("td", { class: "status-" + r.status }, r.status), el("td", {}, r.durationMs ?? ""),
    el("td", {}, r.startedAt ? new Date(r.startedAt).toLocaleTimeString() : ""))));
  $("runs-updated").textContent = "updated " + new Date().toLocaleTimeString();
}

async function detail(id) {
  const { body } = await api("/v1/runs/" + encodeURIComponent(id));
  $("detail-card").hidden = false;
  $("detail-id").textContent = id;
  $("detail").textContent = JSON.stringify(body, null, 2);
}

async function showStore(ev) {
  ev.preventDefault();
  const { status, body } = await api("/v1/store/" + encodeURIComponent($("store-app").value));
  $("store").hidden = false;
  $("store").textContent = status === 200 ? JSON.stringify(body, null, 2) : "HTTP " + status + "\n" + JSON.stringify(body, null, 2);
}

async function open() {
  try {
    await loadPackages();
  } catch (e) {
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  refreshRuns();
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("modrun.token", token);
  open();
});
$("logout").addEventListener("click", () => { sessionStorage.removeItem("modrun.token"); token = ""; showLogin(); });
$("run-form").addEventListener("submit", run);
$("run-target").addEventListener("change", updateInputLabel);
$("store-form").addEventListener("submit", showStore);
$("detail-close").addEventListener("click", () => { $("detail-card").hidden = true; });

health();
setInterval(health, 5000);
setInterval(() => { if (!$("app").hidden) refreshRuns().catch(() => {}); }, 2000);
if (token) open(); else showLogin();
