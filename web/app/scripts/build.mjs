// Builds dist/ (committed: `make run` serves it offline, with no npm and no CDN).
//   node scripts/build.mjs           write dist/
//   node scripts/build.mjs --check   build elsewhere and fail if dist/ differs from it
// The SDK is bundled from its sources (../sdk/src; graphql-ws resolves from
// ../sdk/node_modules), uPlot from this package's node_modules. Output names carry no
// hashes and esbuild is deterministic, so a fresh build reproduces dist/ byte for byte.
import { build } from "esbuild";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "likeview-app-")) : join(root, "dist");

if (!check) rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  absWorkingDir: root,
  entryPoints: {
    feed: "src/feed.ts",
    player: "src/player.ts",
    dashboard: "src/dashboard.ts",
    style: "src/style.css",
  },
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  legalComments: "none",
  charset: "utf8",
  outdir: out,
  // graphql-ws (the dashboard's own subscriptions) is the SDK's copy, at the SDK's pin.
  nodePaths: [join(root, "..", "sdk", "node_modules")],
  logLevel: "warning",
});
for (const page of ["index.html", "player.html", "dashboard.html"]) {
  cpSync(join(root, "src", page), join(out, page));
}
cpSync(join(root, "media", "clip.webm"), join(out, "clip.webm"));

if (check) {
  const names = (dir) => readdirSync(dir).sort();
  const fresh = names(out);
  const committed = names(join(root, "dist"));
  const differ = [...new Set([...fresh, ...committed])].filter((name) => {
    try {
      return !readFileSync(join(out, name)).equals(readFileSync(join(root, "dist", name)));
    } catch {
      return true;
    }
  });
  rmSync(out, { recursive: true, force: true });
  if (differ.length) {
    console.error(`dist/ is not what the sources build; run \`make app\`: ${differ.join(", ")}`);
    process.exit(1);
  }
  console.log(`dist/ matches a fresh build (${fresh.length} files)`);
}
