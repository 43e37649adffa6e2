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
    el("td", {}, el("code", {}, r.id)), el("td", {}, r.package + " " + r.target), el("td", { class: "opt" }, r.app), el("td", { class: "opt" }, r.trigger),
    el("td", { class: "status-" + r.status }, r.status), el("td", {}, r.durationMs ?? ""),
    el("td", { class: "opt" }, r.startedAt ? new Date(r.startedAt).toLocaleTimeString() : ""))));
  $("runs-updated").textContent = "updated " + new Date().toLocaleTimeString();
}

const ms = (a, b) => (a && b ? Math.max(0, new Date(b) - new Date(a)) : null);

async function detail(id) {
  const { body: r } = await api("/v1/runs/" + encodeURIComponent(id));
  $("detail-card").hidden = false;
  $("detail-id").textContent = id;
  const facts = [["package", r.package + "@" + r.version], ["target", r.target], ["app", r.app], ["trigger", r.trigger],
    ["status", r.status], ["server", r.server || ""], ["created", new Date(r.createdAt).toLocaleString()]];
  $("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: k === "status" ? "status-" + v : "" }, v)]));
  // Timing: waiting for a slot or a worker, then running.
  const queued = ms(r.createdAt, r.startedAt ?? r.finishedAt), ran = ms(r.startedAt, r.finishedAt);
  const total = (queued ?? 0) + (ran ?? 0);
  const bar = [];
  if (queued !== null) bar.push(el("span", { class: "queued", style: "flex:" + Math.max(queued, total / 50) }, "queued " + queued + " ms"));
  if (ran !== null) bar.push(el("span", { class: "ran", style: "flex:" + Math.max(ran, total / 50) }, "ran " + ran + " ms"));
  $("detail-timing").replaceChildren(...bar);
  $("detail-timing").title = "total " + total + " ms";
  $("detail-args").textContent = r.args ? JSON.stringify(r.args, null, 2) : "(not kept: over 4 KiB)";
  if (r.error) {
    $("detail-outcome-title").textContent = "Error";
    $("detail-outcome").textContent = r.error.message + (r.error.module ? "\nmodule: " + r.error.module : "") + (r.error.statusCode ? "\nupstream status: " + r.error.statusCode : "");
  } else {
    $("detail-outcome-title").textContent = "Result";
    $("detail-outcome").textContent = r.resultTruncated ? "(not kept: " + r.resultTruncated + ")" : JSON.stringify(r.result ?? null, null, 2);
  }
  const start = r.startedAt ? new Date(r.startedAt) : null;
  const lines = r.log || [];
  $("detail-log").tBodies[0].replaceChildren(...(lines.length ? lines.map((l) => el("tr", { class: "level-" + l.level },
    el("td", {}, start ? "+" + Math.max(0, new Date(l.at) - start) + " ms" : ""), el("td", {}, l.level),
    el("td", { class: "msg" }, l.message + (l.attrs ? "  " + l.attrs : "")))) : [el("tr", {}, el("td", { class: "sub" }, "no lines"))]));
  $("detail").textContent = JSON.stringify(r, null, 2);
}

async function loadCredentials() {
  const { status, body } = await api("/v1/credentials");
  const box = $("credentials");
  if (status !== 200 || !Array.isArray(body) || body.length === 0) {
    box.replaceChildren(el("p", { class: "sub" }, status === 200 ? "no OAuth2 credentials" : "HTTP " + status));
    return;
  }
  box.replaceChildren(...body.map((c) => {
    const row = el("div", { class: "cred", "data-credential": c.package + " " + c.credential + " " + c.app },
      el("strong", {}, c.package + " " + c.credential), el("span", { class: "sub" }, "app " + c.app),
      el("span", { class: "state state-" + c.state }, c.state.replace("_", " ")));
    if (c.expiresAt) row.append(el("span", { class: "sub" }, "expires " + new Date(c.expiresAt).toLocaleString()));
    if (c.refreshedAt) row.append(el("span", { class: "sub" }, "refreshed " + new Date(c.refreshedAt).toLocaleString()));
    if (c.failures) row.append(el("span", { class: "error" }, c.failures + " failed refresh(es)"));
    if (c.state === "needs_login") {
      row.append(el("span", { class: "hint" }, "Log in again: ", el("code", {}, "runner login " + c.package + " " + c.credential + " --app " + c.app)));
    } else if (c.state === "none") {
      row.append(el("span", { class: "hint" }, "No token yet: ", el("code", {}, "runner login " + c.package + " " + c.credential + " --app " + c.app)));
    }
    if (c.lastError) row.append(el("span", { class: "hint error" }, c.lastError));
    return row;
  }));
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
  loadCredentials().catch(() => {});
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
setInterval(() => { if (!$("app").hidden) loadCredentials().catch(() => {}); }, 10000);
if (token) open(); else showLogin();
