// @vitest-environment node
// The committed bundle is what the app serves offline: it must be a fresh build of src/.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs script without types
import { bundle } from "../scripts/build.mjs";

describe("dist/likeview.js", () => {
  it("is a fresh build of src/ (run `npm run build` in web/sdk)", async () => {
    const fresh: string = await bundle();
    const committed = readFileSync(new URL("../dist/likeview.js", import.meta.url), "utf8");
    expect(committed === fresh).toBe(true);
  });

  it("exports the public API", async () => {
    const mod = await import("../dist/likeview.js");
    expect(Object.keys(mod).sort()).toEqual(["LikeviewError", "createLikeview"]);
  });
});

describe("size", () => {
  it("is under 15 KB minified and gzipped, without graphql-ws (`npm run size` prints it)", async () => {
    const { gzipSync } = await import("node:zlib");
    const own: string = await bundle({ external: ["graphql-ws"] });
    expect(gzipSync(own, { level: 9 }).length).toBeLessThan(15 * 1024);
  });
});
