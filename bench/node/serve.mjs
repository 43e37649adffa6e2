// The Node.js contender of bench/'s serve row: a node:http server running
// bench/refresh/auth.js unchanged under shim.mjs, one
// refresh per request.
//
//   node bench/node/serve.mjs TOKEN-SERVER-URL   (prints "serving on http://ADDR")
import http from "node:http";
import { loadAuth } from "./shim.mjs";

const [url] = process.argv.slice(2);
const auth = await loadAuth(url);

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
