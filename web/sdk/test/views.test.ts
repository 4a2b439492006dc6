import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLikeview } from "../src";
import { DEVICE_ID_KEY } from "../src/ids";
import {
  FakeIO,
  drive,
  fakeFetch,
  flushIO,
  gqlError,
  installVisibility,
  memoryStorage,
  setVisibility,
  until,
  useFakeTimers,
} from "./helpers";

const decision = { counted: false, rule: "POST.default", reason: "watched 1 s < 1 s" };

/** A server that knows every APQ hash and answers recordViews with one decision per event. */
function setup(opts: { token?: string | null; fail?: (n: number) => unknown; heartbeatMs?: number } = {}) {
  let n = 0;
  const f = fakeFetch((body) => {
    const failure = opts.fail?.(++n);
    if (failure) return failure;
    const events = body.variables?.v ?? [];
    return {
      data: { recordViews: events.map((e: any) => ({ contentId: e.contentId, sessionId: e.sessionId, decision })) },
    };
  });
  const lv = createLikeview({
    url: "/graphql",
    fetch: f.fetch,
    getToken: () => opts.token ?? null,
    storage: memoryStorage(),
    heartbeatMs: opts.heartbeatMs ?? 5000,
  });
  clients.push(lv);
  const batches = () => f.calls.filter((c) => !c.keepalive).map((c) => c.body.variables.v as any[]);
  return { lv, calls: f.calls, batches };
}

function video() {
  const el = document.createElement("video");
  let t = 0;
  let seeking = false;
  Object.defineProperty(el, "currentTime", { configurable: true, get: () => t, set: (v) => (t = v) });
  Object.defineProperty(el, "seeking", { configurable: true, get: () => seeking });
  const fire = (type: string) => el.dispatchEvent(new Event(type));
  return {
    el,
    fire,
    /** Plays `ms` of media over `ms` of wall time, with a timeupdate every 250 ms. */
    async play(ms: number, rate = 1) {
      for (let done = 0; done < ms; done += 250) {
        await vi.advanceTimersByTimeAsync(250);
        t += (0.25 * rate);
        fire("timeupdate");
      }
    },
    seek(to: number) {
      seeking = true;
      t = to;
      fire("seeking");
      seeking = false;
      fire("seeked");
    },
  };
}

let beacons: { url: string; body: any; type: string }[] = [];
const clients: { close(): void }[] = [];

/** jsdom's Blob has no text(): this one keeps its parts. */
class TestBlob {
  readonly type: string;
  readonly size: number;
  constructor(readonly parts: string[], opts?: { type?: string }) {
    this.type = opts?.type ?? "";
    this.size = new TextEncoder().encode(parts.join("")).length;
  }
  async text() {
    return this.parts.join("");
  }
}

beforeEach(() => {
  useFakeTimers();
  installVisibility();
  FakeIO.instances = [];
  vi.stubGlobal("IntersectionObserver", FakeIO);
  vi.stubGlobal("Blob", TestBlob);
  beacons = [];
  Object.defineProperty(navigator, "sendBeacon", {
    configurable: true,
    value: (url: string, data: Blob) => {
      // Blob.text() is async; the test reads it through a FileReaderSync-free path below.
      beacons.push({ url, body: data, type: data.type });
      return true;
    },
  });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

async function beaconBodies() {
  return Promise.all(beacons.map(async (b) => JSON.parse(await (b.body as Blob).text())));
}

describe("feed tracking", () => {
  it("accrues dwell only while enough is visible, batches trackers in one recordViews per heartbeat", async () => {
    const { lv, batches } = setup();
    const a = lv.trackViews(document.createElement("div"), { contentId: "p1", kind: "feed", source: "FEED" });
    const b = lv.trackViews(document.createElement("div"), { contentId: "p2", kind: "feed" });
    const [ioA, ioB] = FakeIO.instances;
    expect(ioA.options?.threshold).toContain(0.5);
    ioA.show(1);
    ioB.show(0.3); // under the 0.5 bar: nothing accrues
    await vi.advanceTimersByTimeAsync(2000);
    ioB.show(0.6);
    await vi.advanceTimersByTimeAsync(3000);
    await until(() => batches().length > 0);
    expect(batches()).toHaveLength(1);
    expect(batches()[0]).toEqual([
      expect.objectContaining({ contentId: "p1", sessionId: a.sessionId, eventId: "1", watchedMs: 5000, visibleFraction: 1, source: "FEED", platform: "WEB", final: false }),
      expect.objectContaining({ contentId: "p2", sessionId: b.sessionId, eventId: "1", watchedMs: 3000, visibleFraction: 0.6, final: false }),
    ]);
    expect(batches()[0][0].deviceId).toBe(lv.deviceId);
  });

  it("sends nothing for a card never seen, and nothing at a heartbeat with nothing new", async () => {
    const { lv, batches } = setup();
    lv.trackViews(document.createElement("div"), { contentId: "p1", kind: "feed" });
    await vi.advanceTimersByTimeAsync(15_000);
    await flushIO();
    expect(batches()).toEqual([]);
  });

  it("a hidden tab accrues nothing", async () => {
    const { lv, batches } = setup();
    lv.trackViews(document.createElement("div"), { contentId: "p1", kind: "feed" });
    FakeIO.instances[0].show(1);
    await vi.advanceTimersByTimeAsync(1000);
    setVisibility("hidden");
    await vi.advanceTimersByTimeAsync(60_000);
    setVisibility("visible");
    await vi.advanceTimersByTimeAsync(500);
    const beaconed = (await beaconBodies()).flatMap((b) => b.variables.v);
    const sent = [...beaconed, ...batches().flat()];
    expect(sent.reduce((s, e) => s + e.watchedMs, 0)).toBe(1000);
    await drive(lv.trackViews(document.createElement("div"), { contentId: "x", kind: "feed" }).flush());
    expect([...beaconed, ...batches().flat()].reduce((s, e) => s + e.watchedMs, 0)).toBe(1500);
  });

  it("eventIds of a session go up by one, and stop() sends the final event", async () => {
    const { lv, batches } = setup();
    const t = lv.trackViews(document.createElement("div"), { contentId: "p1", kind: "feed" });
    FakeIO.instances[0].show(0.75);
    await vi.advanceTimersByTimeAsync(10_000);
    await flushIO();
    await vi.advanceTimersByTimeAsync(1200);
    await drive(t.stop());
    const evs = batches().flat();
    expect(evs.map((e) => [e.eventId, e.watchedMs, e.final])).toEqual([
      ["1", 5000, false],
      ["2", 5000, false],
      ["3", 1200, true],
    ]);
  });
});

describe("media tracking", () => {
  it("credits played time, never a seek, and reports the furthest position", async () => {
    const { lv, batches } = setup({ heartbeatMs: 60_000 });
    const v = video();
    const t = lv.trackViews(v.el, { contentId: "v1", kind: "media" });
    v.fire("play");
    await v.play(4000);
    v.seek(100); // jump ahead: not watched
    await v.play(1000);
    v.fire("pause");
    await vi.advanceTimersByTimeAsync(10_000); // paused: nothing
    await drive(t.flush());
    expect(batches().flat()).toEqual([
      expect.objectContaining({ contentId: "v1", eventId: "1", watchedMs: 5000, positionMs: 101_000, final: false }),
    ]);
  });

  it("credits no more than wall time at 2x speed", async () => {
    const { lv, batches } = setup({ heartbeatMs: 60_000 });
    const v = video();
    const t = lv.trackViews(v.el, { contentId: "v1", kind: "media" });
    v.fire("play");
    await v.play(3000, 2);
    await drive(t.flush());
    expect(batches().flat()[0]).toMatchObject({ watchedMs: 3000, positionMs: 6000 });
  });

  it("a background tab does not accrue watch time while the video plays on", async () => {
    const { lv, batches } = setup({ heartbeatMs: 60_000 });
    const v = video();
    const t = lv.trackViews(v.el, { contentId: "v1", kind: "media" });
    v.fire("play");
    await v.play(2000);
    setVisibility("hidden");
    await v.play(20_000);
    setVisibility("visible");
    await v.play(1000);
    await drive(t.flush());
    const beaconed = (await beaconBodies()).flatMap((b) => b.variables.v);
    const total = [...beaconed, ...batches().flat()].reduce((s, e) => s + e.watchedMs, 0);
    expect(total).toBe(3000);
  });

  it("ended sends a final event and the next play is a new session", async () => {
    const { lv, batches } = setup({ heartbeatMs: 60_000 });
    const v = video();
    const t = lv.trackViews(v.el, { contentId: "v1", kind: "media" });
    v.fire("play");
    await v.play(1000);
    const first = t.sessionId;
    v.fire("ended");
    await flushIO();
    v.el.currentTime = 0;
    v.fire("play");
    await v.play(500);
    await drive(t.flush());
    const evs = batches().flat();
    expect(evs.map((e) => [e.sessionId === first, e.eventId, e.watchedMs, e.final])).toEqual([
      [true, "1", 1000, true],
      [false, "1", 500, false],
    ]);
  });

  it("reports each decision to onDecision", async () => {
    const { lv } = setup({ heartbeatMs: 60_000 });
    const v = video();
    const seen: unknown[] = [];
    const t = lv.trackViews(v.el, { contentId: "v1", kind: "media", onDecision: (d) => seen.push(d) });
    v.fire("play");
    await v.play(1000);
    await drive(t.flush());
    expect(seen).toEqual([decision]);
  });
});

describe("sending", () => {
  it("keeps a batch that failed to send, with its eventIds, for the next heartbeat", async () => {
    const { lv, batches, calls } = setup({ fail: (n) => (n === 1 ? new TypeError("offline") : undefined) });
    lv.trackViews(document.createElement("div"), { contentId: "p1", kind: "feed" });
    FakeIO.instances[0].show(1);
    await vi.advanceTimersByTimeAsync(5000);
    await flushIO();
    await vi.advanceTimersByTimeAsync(5000);
    await flushIO();
    expect(calls.map((c) => c.body.variables.v.map((e: any) => e.eventId))).toEqual([["1"], ["1", "2"]]);
    expect(batches()[1].map((e) => [e.eventId, e.watchedMs])).toEqual([
      ["1", 5000],
      ["2", 5000],
    ]);
    expect(batches()[1][0]).toEqual(batches()[0][0]);
  });

  it("drops a batch the server refuses (not retried forever)", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const { lv, calls } = setup({ fail: (n) => (n === 1 ? gqlError("BAD_USER_INPUT") : undefined) });
    lv.trackViews(document.createElement("div"), { contentId: "p1", kind: "feed" });
    FakeIO.instances[0].show(1);
    await vi.advanceTimersByTimeAsync(5000);
    await flushIO();
    await vi.advanceTimersByTimeAsync(5000);
    await flushIO();
    expect(calls.map((c) => c.body.variables.v.map((e: any) => e.eventId))).toEqual([["1"], ["2"]]);
    expect(warn).toHaveBeenCalled();
  });

  it("pagehide flushes final events with sendBeacon when anonymous", async () => {
    const { lv, calls } = setup();
    const t = lv.trackViews(document.createElement("div"), { contentId: "p1", kind: "feed" });
    FakeIO.instances[0].show(1);
    await vi.advanceTimersByTimeAsync(2500);
    window.dispatchEvent(new Event("pagehide"));
    expect(beacons).toHaveLength(1);
    expect(beacons[0]).toMatchObject({ url: "/graphql", type: "application/json" });
    const [body] = await beaconBodies();
    expect(body.query).toContain("recordViews(inputs: $v)");
    expect(body.variables.v).toEqual([
      expect.objectContaining({ sessionId: t.sessionId, eventId: "1", watchedMs: 2500, final: true, deviceId: lv.deviceId }),
    ]);
    expect(calls).toHaveLength(0);
  });

  it("pagehide uses fetch(keepalive) with the token when signed in (a beacon cannot carry it)", async () => {
    const { lv, calls } = setup({ token: "tok" });
    lv.trackViews(document.createElement("div"), { contentId: "p1", kind: "feed" });
    FakeIO.instances[0].show(1);
    await vi.advanceTimersByTimeAsync(1000);
    window.dispatchEvent(new Event("pagehide"));
    expect(beacons).toHaveLength(0);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ keepalive: true, headers: { authorization: "Bearer tok" } });
    expect(calls[0].body.variables.v[0]).toMatchObject({ watchedMs: 1000, final: true });
  });

  it("falls back to fetch(keepalive) when sendBeacon refuses", async () => {
    Object.defineProperty(navigator, "sendBeacon", { configurable: true, value: () => false });
    const { lv, calls } = setup();
    lv.trackViews(document.createElement("div"), { contentId: "p1", kind: "feed" });
    FakeIO.instances[0].show(1);
    await vi.advanceTimersByTimeAsync(1000);
    window.dispatchEvent(new Event("pagehide"));
    expect(calls.map((c) => c.keepalive)).toEqual([true]);
  });

  it("splits a large unload flush into beacons under 64 KiB", async () => {
    const { lv } = setup();
    for (let i = 0; i < 600; i++) lv.trackViews(document.createElement("div"), { contentId: `p${i}`, kind: "feed" });
    for (const io of FakeIO.instances) io.show(1);
    await vi.advanceTimersByTimeAsync(1000);
    window.dispatchEvent(new Event("pagehide"));
    const bodies = await beaconBodies();
    expect(bodies.length).toBeGreaterThan(1);
    for (const b of beacons) expect((b.body as Blob).size).toBeLessThan(64 * 1024);
    expect(bodies.flatMap((b) => b.variables.v)).toHaveLength(600);
  });
});

describe("deviceId", () => {
  it("is stable across clients sharing storage, and made once", () => {
    const storage = memoryStorage();
    const a = createLikeview({ url: "/graphql", storage }).deviceId;
    const b = createLikeview({ url: "/graphql", storage }).deviceId;
    expect(a).toBe(b);
    expect(storage.map.get(DEVICE_ID_KEY)).toBe(a);
    expect(a).toMatch(/^web-/);
  });

  it("keeps a stored id, replaces an invalid one", () => {
    expect(createLikeview({ url: "/graphql", storage: memoryStorage({ [DEVICE_ID_KEY]: "dev-1" }) }).deviceId).toBe("dev-1");
    const bad = memoryStorage({ [DEVICE_ID_KEY]: "x".repeat(200) });
    const id = createLikeview({ url: "/graphql", storage: bad }).deviceId;
    expect(id).not.toBe("x".repeat(200));
    expect(bad.map.get(DEVICE_ID_KEY)).toBe(id);
  });

  it("uses localStorage by default, and survives storage that throws", () => {
    localStorage.removeItem(DEVICE_ID_KEY);
    const id = createLikeview({ url: "/graphql" }).deviceId;
    expect(localStorage.getItem(DEVICE_ID_KEY)).toBe(id);
    const throwing = { getItem: () => { throw new Error("blocked"); }, setItem: () => { throw new Error("blocked"); } };
    const a = createLikeview({ url: "/graphql", storage: throwing }).deviceId;
    const b = createLikeview({ url: "/graphql", storage: throwing }).deviceId;
    expect(a).toBe(b);
  });
});
