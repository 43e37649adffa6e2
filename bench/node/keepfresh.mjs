// Cold start in Node.js: load the refresh-token example's auth.js and call
// keepFresh() on an empty store (no network), as row 4 runs it in modrun.
import { readFileSync } from "node:fs";
globalThis.appsmith = { store: {} };
globalThis.inputs = { marginSeconds: 1 };
const src = readFileSync(new URL("../../examples/refresh-token/package/auth.js", import.meta.url), "utf8");
const auth = (await import("data:text/javascript," + encodeURIComponent(src))).default;
console.log(JSON.stringify((await auth.keepFresh()) ?? null));
