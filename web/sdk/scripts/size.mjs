// The SDK's size, minified and gzipped, without graphql-ws (its own package, often
// shared with the app): fails over the budget.
import { gzipSync } from "node:zlib";
import { bundle } from "./build.mjs";

const BUDGET = 15 * 1024;
const own = await bundle({ external: ["graphql-ws"] });
const all = await bundle();
const kb = (n) => `${(n / 1024).toFixed(2)} KB`;
const ownGz = gzipSync(own, { level: 9 }).length;
console.log(`SDK without graphql-ws: ${kb(own.length)} minified, ${kb(ownGz)} gzipped (budget ${kb(BUDGET)})`);
console.log(`with graphql-ws (dist/likeview.js): ${kb(all.length)} minified, ${kb(gzipSync(all, { level: 9 }).length)} gzipped`);
if (ownGz > BUDGET) {
  console.error("over budget");
  process.exit(1);
}
