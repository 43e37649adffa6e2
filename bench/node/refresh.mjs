// The seed's refresh flow in Node.js, running bench/refresh/auth.js
// unchanged under a minimal shim: appsmith.store, storeValue, and
// refreshAPI.run over node:http with a keep-alive agent.
//
//   node bench/node/refresh.mjs URL RUNS CONCURRENCY [--json]
import http from "node:http";
import { readFileSync } from "node:fs";

const [url, runsArg, concArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 20000), conc = Number(concArg ?? 64);
const asJSON = process.argv.includes("--json");
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const target = new URL("/api/user/token-refresh/", url ?? "http://127.0.0.1:9900");

function post(body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(target, {
      method: "POST", agent,
      headers: { "Content-Type": "application/json", Accept: "application/json", "Content-Length": Buffer.byteLength(data) },
    }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error("HTTP " + res.statusCode));
        resolve(JSON.parse(Buffer.concat(chunks).toString()));
      });
    });
    req.on("error", reject);
    req.end(data);
  });
}

const store = {};
globalThis.appsmith = { store };
globalThis.storeValue = async (k, v) => { store[k] = v; };
globalThis.refreshAPI = { run: (params) => post({ refresh_token: params.refreshtoken }) };

const src = readFileSync(new URL("../refresh/auth.js", import.meta.url), "utf8");
const auth = (await import("data:text/javascript," + encodeURIComponent(src))).default;

for (let i = 0; i < 10 * conc; i++) await auth.refresh();
const lat = new Array(runs);
let next = 0, errors = 0;
const start = process.hrtime.bigint();
async function worker() {
  for (;;) {
    const i = next++;
    if (i >= runs) return;
    const t0 = process.hrtime.bigint();
    try { await auth.refresh(); } catch { errors++; }
    lat[i] = Number(process.hrtime.bigint() - t0) / 1e6;
  }
}
await Promise.all(Array.from({ length: conc }, worker));
const secs = Number(process.hrtime.bigint() - start) / 1e9;
lat.sort((a, b) => a - b);
const pct = (p) => Math.round(lat[Math.floor(p * (lat.length - 1))] * 1000) / 1000;
const r = { runs, concurrency: conc, runs_per_sec: runs / secs, p50_ms: pct(0.5), p90_ms: pct(0.9), p99_ms: pct(0.99), errors };
console.log(asJSON ? JSON.stringify(r) : `runs ${runs}  concurrency ${conc}  ${r.runs_per_sec.toFixed(0)} runs/s  p50 ${r.p50_ms} ms  p99 ${r.p99_ms} ms  errors ${errors}`);
agent.destroy();
