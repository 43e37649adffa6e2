// The Node.js contender of bench/'s serve row: a node:http server running
// bench/refresh/auth.js unchanged under the shim of refresh.mjs, one
// refresh per request.
//
//   node bench/node/serve.mjs TOKEN-SERVER-URL   (prints "serving on http://ADDR")
import http from "node:http";
import { readFileSync } from "node:fs";

const [url] = process.argv.slice(2);
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

const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", async () => {
    try {
      const result = await auth.refresh();
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ result }));
    } catch (e) {
      res.writeHead(500);
      res.end(String(e));
    }
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => console.log(`serving on http://127.0.0.1:${server.address().port}`));
