import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLikeview } from "../src";
import { backoffMs, deriveWsUrl } from "../src/live";
import { GUARD_MS } from "../src/store";
import { drive, fakeFetch, memoryStorage, summary, useFakeTimers } from "./helpers";

/** A graphql-ws client double: records options and subscriptions, lets the test push. */
function fakeWs() {
  const subs: { payload: any; sink: any; active: boolean }[] = [];
  let options: any;
  const factory = vi.fn((o: any) => {
    options = o;
    return {
      subscribe(payload: any, sink: any) {
        const s = { payload, sink, active: true };
        subs.push(s);
        return () => (s.active = false);
      },
      dispose: vi.fn(),
    };
  });
  const push = (s: any, i = 0) => subs[i].sink.next({ data: { engagementUpdated: s } });
  return { factory: factory as any, subs, push, options: () => options };
}

function setup(handler: Parameters<typeof fakeFetch>[0] = () => ({ data: {} })) {
  const ws = fakeWs();
  const f = fakeFetch(handler);
  const lv = createLikeview({
    url: "https://api.example/graphql",
    fetch: f.fetch,
    getToken: () => "tok",
    storage: memoryStorage(),
    createWsClient: ws.factory,
  });
  return { lv, ws, calls: f.calls };
}

beforeEach(() => useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("deriveWsUrl and backoff", () => {
  it.each([
    ["https://api.example/graphql", undefined, "wss://api.example/graphql"],
    ["http://127.0.0.1:8000/graphql", undefined, "ws://127.0.0.1:8000/graphql"],
    ["/graphql", "https://app.example/app/feed", "wss://app.example/graphql"],
    ["/graphql", "http://localhost:8000/app/", "ws://localhost:8000/graphql"],
  ])("%s from %s", (url, base, want) => {
    expect(deriveWsUrl(url, base)).toBe(want);
  });

  it.each([
    [0, 0, 500],
    [0, 0.999, 999],
    [3, 0, 4000],
    [20, 0.999, 29_985],
  ])("retry %i with random %f waits %i ms", (retries, r, want) => {
    expect(backoffMs(retries, () => r)).toBe(want);
  });
});

describe("watchSummaries", () => {
  it("subscribes with the ids, reconnects forever, sends the token in connection_init", async () => {
    const { lv, ws } = setup();
    lv.watchSummaries(["v1", "v2"], () => undefined);
    expect(ws.subs[0].payload.variables).toEqual({ ids: ["v1", "v2"] });
    expect(ws.subs[0].payload.query).toContain("engagementUpdated(contentIds: $ids)");
    const o = ws.options();
    expect(o.url).toBe("wss://api.example/graphql");
    expect(o.retryAttempts).toBe(Infinity);
    expect(o.shouldRetry(new Error("x"))).toBe(true);
    expect(await o.connectionParams()).toEqual({ authorization: "Bearer tok" });
  });

  it("delivers pushes, and stops on unsubscribe", () => {
    const { lv, ws } = setup();
    const seen: number[] = [];
    const stop = lv.watchSummaries(["v1"], (s) => seen.push(s.likes));
    ws.push(summary("v1", 1));
    ws.push(summary("v1", 2));
    stop();
    expect(ws.subs[0].active).toBe(false);
    ws.push(summary("v1", 3));
    expect(seen).toEqual([1, 2]);
    expect(lv.state("v1")?.likes).toBe(3); // the store still follows; the listener is gone
  });

  it("splits more than 100 ids over subscriptions", () => {
    const { lv, ws } = setup();
    lv.watchSummaries(Array.from({ length: 250 }, (_, i) => `c${i}`), () => undefined);
    expect(ws.subs.map((s) => s.payload.variables.ids.length)).toEqual([100, 100, 50]);
  });

  it("lays pending taps over pushes: a push during the request does not undo the tap", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { lv, ws } = setup(async () => {
      await gate;
      return { data: { like: { contentId: "v1", viewerReaction: "LIKE", changed: true, summary: summary("v1", 6, "LIKE") } } };
    });
    const seen: [number, string | null][] = [];
    lv.watchSummaries(["v1"], (s) => seen.push([s.likes, s.viewerReaction]));
    ws.push(summary("v1", 4));
    const done = lv.like("v1");
    ws.push(summary("v1", 5)); // someone else liked, before ours landed
    release();
    await drive(done);
    expect(seen).toEqual([
      [4, null],
      [5, "LIKE"],
      [6, "LIKE"],
      [6, "LIKE"],
    ]);
  });

  it("holds back a push older than the mutation's answer", async () => {
    const { lv, ws } = setup(() => ({
      data: { like: { contentId: "v1", viewerReaction: "LIKE", changed: true, summary: summary("v1", 1, "LIKE") } },
    }));
    const seen: [number, string | null][] = [];
    lv.watchSummaries(["v1"], (s) => seen.push([s.likes, s.viewerReaction]));
    await drive(lv.like("v1"));
    ws.push(summary("v1", 0, null)); // from before the aggregator took our like in
    expect(lv.state("v1")).toMatchObject({ likes: 1, viewerReaction: "LIKE" });
    ws.push(summary("v1", 2, "LIKE")); // shows our like: newer, taken
    expect(lv.state("v1")).toMatchObject({ likes: 2, viewerReaction: "LIKE" });
    expect(seen.at(-1)).toEqual([2, "LIKE"]);
    expect(seen).not.toContainEqual([0, null]);
  });

  it("shows a held-back push after the guard if nothing newer came (another device's change)", async () => {
    const { lv, ws } = setup(() => ({
      data: { like: { contentId: "v1", viewerReaction: "LIKE", changed: true, summary: summary("v1", 1, "LIKE") } },
    }));
    lv.watchSummaries(["v1"], () => undefined);
    await drive(lv.like("v1"));
    ws.push(summary("v1", 0, null));
    expect(lv.state("v1")?.viewerReaction).toBe("LIKE");
    await vi.advanceTimersByTimeAsync(GUARD_MS);
    expect(lv.state("v1")).toMatchObject({ likes: 0, viewerReaction: null });
  });

  it("keeps a push that already showed the change over the mutation's answer", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { lv, ws } = setup(async () => {
      await gate;
      return { data: { like: { contentId: "v1", viewerReaction: "LIKE", changed: true, summary: summary("v1", 3, "LIKE") } } };
    });
    lv.watchSummaries(["v1"], () => undefined);
    const done = lv.like("v1");
    ws.push(summary("v1", 4, "LIKE")); // ours and one more, through the ordered stream
    release();
    await drive(done);
    expect(lv.state("v1")?.likes).toBe(4);
  });

  it("a resubscription's first summaries replace the state (consistent after a reconnect)", () => {
    const { lv, ws } = setup();
    lv.watchSummaries(["v1"], () => undefined);
    ws.push(summary("v1", 7));
    // graphql-ws resubscribes on the same sink after a reconnect; the server sends the current state first.
    ws.push(summary("v1", 9));
    expect(lv.state("v1")?.likes).toBe(9);
  });

  it("reports a refused subscription to onError", () => {
    const { lv, ws } = setup();
    const errors: string[] = [];
    lv.watchSummaries(["v1"], () => undefined, (e) => errors.push(e.code));
    ws.subs[0].sink.error([{ message: "bad", extensions: { code: "BAD_USER_INPUT" } }]);
    expect(errors).toEqual(["BAD_USER_INPUT"]);
  });
});
