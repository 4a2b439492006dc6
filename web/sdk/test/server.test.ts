// Against a running service (opt in): LIKEVIEW_URL=http://127.0.0.1:8000/graphql
// LIKEVIEW_TOKEN=<a user's JWT> npx vitest run test/server.test.ts, with contents "v1"
// (VIDEO) and "p1" (POST) registered, and ALLOWED_ORIGINS=http://localhost:3000 (jsdom's
// origin, for the WebSocket handshake). Checks the wire format the unit tests assume.
import { describe, expect, it, vi } from "vitest";
import { createLikeview, type Summary } from "../src";
import { FakeIO, memoryStorage } from "./helpers";

const url = process.env.LIKEVIEW_URL;
const token = process.env.LIKEVIEW_TOKEN;

async function until(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  expect(cond()).toBe(true);
}

describe.skipIf(!url || !token)("against a running service", { timeout: 20_000 }, () => {
  it("APQ, like/unlike with a reused requestId, live summaries, recordViews", async () => {
    const lv = createLikeview({ url: url!, getToken: () => token!, storage: memoryStorage() });
    const q = "query Probe($id: ID!) { engagementSummary(contentId: $id) { likes } }";
    const first = await lv.request<{ engagementSummary: { likes: number } }>(q, { id: "v1" });
    expect(typeof first.engagementSummary.likes).toBe("number");
    await lv.request(q, { id: "v1" }); // by hash alone now

    const seen: Summary[] = [];
    const stop = lv.watchSummaries(["v1"], (s) => seen.push(s));
    await until(() => seen.length > 0);
    await lv.unlike("v1");
    const before = lv.state("v1")!.likes;
    const [a, b] = [lv.like("v1", "LOVE"), lv.like("v1", "LOVE")];
    expect(a).toBe(b);
    const out = await a;
    expect(out).toMatchObject({ ok: true, viewerReaction: "LOVE" });
    expect(lv.state("v1")).toMatchObject({ viewerReaction: "LOVE", likes: before + 1, pending: false });
    await until(() => seen.some((s) => s.viewerReaction === "LOVE" && s.likes === before + 1));

    const decisions: unknown[] = [];
    const video = document.createElement("video");
    const t = lv.trackViews(video, { contentId: "v1", kind: "media", onDecision: (d) => decisions.push(d) });
    let pos = 0;
    Object.defineProperty(video, "currentTime", { get: () => pos });
    video.dispatchEvent(new Event("play"));
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 250));
      pos += 0.25;
      video.dispatchEvent(new Event("timeupdate"));
    }
    await t.flush();
    expect(decisions).toHaveLength(1);
    expect(decisions[0]).toMatchObject({ counted: false, rule: "VIDEO.default" });
    await t.stop();
    stop();
    lv.close();
  });

  it("the server takes the unload flush as the SDK sends it (anonymous, application/json)", async () => {
    vi.stubGlobal("IntersectionObserver", FakeIO);
    // sendBeacon's answer cannot be read: the keepalive fetch sends the very same body and type.
    Object.defineProperty(navigator, "sendBeacon", { configurable: true, value: () => false });
    const answers: Promise<Response>[] = [];
    const sent: RequestInit[] = [];
    const lv = createLikeview({
      url: url!,
      storage: memoryStorage(),
      fetch: (u, init) => {
        sent.push(init!);
        const p = fetch(u, init);
        answers.push(p);
        return p;
      },
    });
    lv.trackViews(document.createElement("div"), { contentId: "p1", kind: "feed" });
    FakeIO.instances.at(-1)!.show(1);
    await new Promise((r) => setTimeout(r, 1100));
    window.dispatchEvent(new Event("pagehide"));
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ keepalive: true, headers: { "content-type": "application/json" } });
    const json = await (await answers[0]).json();
    expect(json.errors).toBeUndefined();
    expect(json.data.recordViews[0].decision).toMatchObject({ counted: true, rule: "POST.default" });
    lv.close();
    vi.unstubAllGlobals();
  });
});
