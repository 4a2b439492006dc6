import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLikeview } from "../src";
import { applyReaction } from "../src/store";
import { drive, fakeFetch, flushIO, gqlError, memoryStorage, settle, summary, useFakeTimers } from "./helpers";

const payload = (contentId: string, likes: number, viewerReaction: string | null, changed = true) => ({
  data: {
    [viewerReaction ? "like" : "unlike"]: {
      contentId,
      viewerReaction,
      changed,
      summary: summary(contentId, likes, viewerReaction),
    },
  },
});

function setup(handler: Parameters<typeof fakeFetch>[0]) {
  const f = fakeFetch((body, call) => {
    // APQ: every hash is known, so each request is one call.
    return handler(body, call);
  });
  const lv = createLikeview({ url: "/graphql", fetch: f.fetch, getToken: () => "tok", storage: memoryStorage() });
  const mutations = () => f.calls.map((c) => c.body.variables?.input).filter(Boolean);
  return { lv, calls: f.calls, mutations };
}

beforeEach(() => {
  useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("applyReaction", () => {
  const s = (viewerReaction: any, likes: number, reactions: [string, number][]) => ({
    viewerReaction,
    likes,
    reactions: reactions.map(([reaction, count]) => ({ reaction, count })) as any,
  });
  it.each([
    ["none to LIKE", s(null, 2, [["LIKE", 2]]), "LIKE", s("LIKE", 3, [["LIKE", 3]])],
    ["LIKE to none", s("LIKE", 3, [["LIKE", 3]]), null, s(null, 2, [["LIKE", 2]])],
    ["LIKE to LOVE", s("LIKE", 1, [["LIKE", 1]]), "LOVE", s("LOVE", 1, [["LOVE", 1]])],
    ["same reaction", s("WOW", 5, [["WOW", 5]]), "WOW", s("WOW", 5, [["WOW", 5]])],
    ["none to none", s(null, 0, []), null, s(null, 0, [])],
    ["never below zero", s("LIKE", 0, []), null, s(null, 0, [])],
  ])("%s", (_name, from, to, want) => {
    expect(applyReaction(from, to as any)).toEqual(want);
  });
});

describe("like and unlike", () => {
  it("shows the change at once, then the server's summary", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { lv } = setup(async () => {
      await gate;
      return payload("v1", 1, "LOVE");
    });
    const done = lv.like("v1", "LOVE");
    expect(lv.state("v1")).toMatchObject({ viewerReaction: "LOVE", likes: 1, pending: true });
    release();
    expect(await done).toMatchObject({ ok: true, changed: true, viewerReaction: "LOVE" });
    expect(lv.state("v1")).toMatchObject({ viewerReaction: "LOVE", likes: 1, pending: false });
  });

  it("a double tap sends one request", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { lv, mutations } = setup(async () => {
      await gate;
      return payload("v1", 1, "LIKE");
    });
    const a = lv.like("v1");
    const b = lv.like("v1");
    expect(b).toBe(a);
    expect(lv.state("v1")?.likes).toBe(1);
    release();
    await a;
    expect(mutations()).toHaveLength(1);
  });

  it("retries a network failure with the same requestId", async () => {
    let n = 0;
    const { lv, mutations } = setup(() => (++n < 3 ? new TypeError("offline") : payload("v1", 1, "LIKE")));
    const done = lv.like("v1");
    expect(await drive(done)).toMatchObject({ ok: true });
    const ids = mutations().map((i) => i.requestId);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(1);
    expect(mutations()[0]).toMatchObject({ contentId: "v1", deviceId: expect.any(String) });
  });

  it("waits retryAfterMs on RATE_LIMITED before the retry", async () => {
    let n = 0;
    const { lv, mutations } = setup(() => (++n === 1 ? gqlError("RATE_LIMITED", { retryAfterMs: 5000 }) : payload("v1", 1, "LIKE")));
    const done = lv.like("v1");
    await flushIO();
    await vi.advanceTimersByTimeAsync(4999);
    expect(mutations()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await drive(done)).toMatchObject({ ok: true });
    expect(mutations()).toHaveLength(2);
    expect(mutations()[1].requestId).toBe(mutations()[0].requestId);
  });

  it("a new tap after the answer gets a new requestId", async () => {
    const { lv, mutations } = setup((b) => payload("v1", b.variables.input.reaction ? 1 : 0, b.variables.input.reaction ?? null));
    await lv.like("v1");
    await lv.unlike("v1");
    await lv.like("v1");
    const ids = mutations().map((i) => i.requestId);
    expect(new Set(ids).size).toBe(3);
  });

  it("rolls back on an error that is not retried, and keeps the error", async () => {
    const { lv, mutations } = setup(() => gqlError("CONTENT_NOT_FOUND"));
    const done = lv.like("nope");
    expect(lv.state("nope")).toMatchObject({ viewerReaction: "LIKE", likes: 1 });
    const out = await done;
    expect(out).toMatchObject({ ok: false, viewerReaction: null });
    expect(out.error?.code).toBe("CONTENT_NOT_FOUND");
    expect(lv.state("nope")).toMatchObject({ viewerReaction: null, likes: 0, pending: false });
    expect(lv.state("nope")?.error?.code).toBe("CONTENT_NOT_FOUND");
    expect(mutations()).toHaveLength(1);
  });

  it("rolls back after the retries are spent", async () => {
    const { lv, mutations } = setup(() => gqlError("UNAVAILABLE", { retryAfterMs: 100 }));
    const done = lv.like("v1");
    expect((await drive(done)).error?.code).toBe("UNAVAILABLE");
    expect(mutations()).toHaveLength(4); // 1 + maxRetries
    expect(lv.state("v1")).toMatchObject({ viewerReaction: null, likes: 0 });
  });

  it("sends a like and an unlike of one content one after the other", async () => {
    const order: string[] = [];
    const { lv } = setup(async (b) => {
      const r = b.variables.input.reaction ?? null;
      order.push(`start ${r}`);
      await settle(5);
      order.push(`end ${r}`);
      return payload("v1", r ? 1 : 0, r);
    });
    const a = lv.like("v1");
    const b = lv.unlike("v1");
    expect(lv.state("v1")).toMatchObject({ viewerReaction: null, likes: 0, pending: true });
    await Promise.all([a, b]);
    expect(order).toEqual(["start LIKE", "end LIKE", "start null", "end null"]);
    expect(lv.state("v1")).toMatchObject({ viewerReaction: null, likes: 0, pending: false });
  });

  it("notifies onState listeners", async () => {
    const { lv } = setup(() => payload("v1", 1, "LIKE"));
    const seen: [string, boolean][] = [];
    const off = lv.onState((cid, s) => seen.push([cid, s.pending]));
    await lv.like("v1");
    off();
    await lv.unlike("v1");
    expect(seen).toEqual([
      ["v1", true],
      ["v1", false],
    ]);
  });
});
