// The shim both Node.js contenders of bench/ share: bench/refresh/auth.js
// loaded unchanged, with appsmith.store, storeValue, and refreshAPI.run
// over node:http with a keep-alive agent, posting to URL.
import http from "node:http";
import { readFileSync } from "node:fs";

export async function loadAuth(url) {
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
  return (await import("data:text/javascript," + encodeURIComponent(src))).default;
}
