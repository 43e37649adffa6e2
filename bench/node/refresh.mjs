// The seed's refresh flow in Node.js, running bench/refresh/auth.js
// unchanged under a minimal shim: appsmith.store, storeValue, and
// refreshAPI.run over node:http with a keep-alive agent.
//
//   node bench/node/refresh.mjs URL RUNS CONCURRENCY [--json]
import { loadAuth } from "./shim.mjs";

const [url, runsArg, concArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 20000), conc = Number(concArg ?? 64);
const asJSON = process.argv.includes("--json");
const auth = await loadAuth(url);

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
process.exit(0); // the keep-alive agent would hold the process
