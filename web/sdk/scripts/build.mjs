// Builds dist/likeview.js: one minified ES module, graphql-ws included, no CDN.
// `node scripts/build.mjs --check` fails when the committed dist differs from a fresh build.
import { build } from "esbuild";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "likeview.js");

export async function bundle({ external = [] } = {}) {
  const result = await build({
    entryPoints: [join(root, "src", "index.ts")],
    bundle: true,
    format: "esm",
    minify: true,
    target: "es2020",
    platform: "browser",
    legalComments: "none",
    external,
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0].text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = await bundle();
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(out, "utf8");
    } catch {
      // missing: reported below
    }
    if (current !== text) {
      console.error("dist/likeview.js is not a fresh build of src/: run `npm run build` in web/sdk");
      process.exit(1);
    }
    console.log("dist/likeview.js matches src/");
  } else {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, text);
    console.log(`wrote dist/likeview.js (${text.length} bytes)`);
  }
}
