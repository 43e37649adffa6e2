// Cold start in Node.js: load bench/refresh/auth.js and call add(1, 2).
import { readFileSync } from "node:fs";
const src = readFileSync(new URL("../refresh/auth.js", import.meta.url), "utf8");
const m = (await import("data:text/javascript," + encodeURIComponent(src))).default;
console.log(JSON.stringify(m.add(1, 2)));
