// Test doubles: a scripted GraphQL server behind fetch, an IntersectionObserver we
// drive by hand, and the page's visibility.
import { vi } from "vitest";

export interface Call {
  body: Record<string, any>;
  headers: Record<string, string>;
  keepalive: boolean;
}

export type Handler = (body: Record<string, any>, call: Call) => unknown | Promise<unknown>;

/** A fetch answering each POST with handler(body): a value is the JSON, an Error a network failure. */
export function fakeFetch(handler: Handler) {
  const calls: Call[] = [];
  const fn = vi.fn(async (_url: string | URL | Request, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body));
    const call: Call = {
      body,
      headers: { ...(init?.headers as Record<string, string>) },
      keepalive: Boolean(init?.keepalive),
    };
    calls.push(call);
    const answer = await handler(body, call);
    if (answer instanceof Error) throw answer;
    // Only microtasks, no real I/O: fake timers then fully decide what runs when.
    const text = JSON.stringify(answer);
    return { ok: true, status: 200, json: async () => JSON.parse(text) } as Response;
  });
  return { fetch: fn as unknown as typeof fetch, calls };
}

export function gqlError(code: string, extra: Record<string, unknown> = {}) {
  return { errors: [{ message: code, extensions: { code, ...extra } }], data: null };
}

export function memoryStorage(init: Record<string, string> = {}) {
  const m = new Map(Object.entries(init));
  return {
    getItem: (k: string) => m.get(k) ?? null,
    setItem: (k: string, v: string) => void m.set(k, v),
    map: m,
  };
}

export class FakeIO {
  static instances: FakeIO[] = [];
  targets: Element[] = [];
  constructor(
    private readonly cb: (entries: IntersectionObserverEntry[]) => void,
    readonly options?: IntersectionObserverInit,
  ) {
    FakeIO.instances.push(this);
  }
  observe(el: Element) {
    this.targets.push(el);
  }
  disconnect() {
    this.targets = [];
  }
  unobserve() {}
  takeRecords() {
    return [];
  }
  /** Reports `ratio` of the observed element visible. */
  show(ratio: number) {
    this.cb([{ intersectionRatio: ratio, isIntersecting: ratio > 0, target: this.targets[0] } as IntersectionObserverEntry]);
  }
}

let visibility: DocumentVisibilityState = "visible";

export function installVisibility() {
  visibility = "visible";
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => visibility });
  Object.defineProperty(document, "hidden", { configurable: true, get: () => visibility === "hidden" });
}

export function setVisibility(v: DocumentVisibilityState) {
  visibility = v;
  document.dispatchEvent(new Event("visibilitychange"));
}

/** Lets pending promise callbacks run (fake timers do not touch microtasks). */
export async function settle(rounds = 20) {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

export const summary = (contentId: string, likes: number, viewerReaction: string | null = null, extra = {}) => ({
  contentId,
  likes,
  reactions: likes ? [{ reaction: viewerReaction ?? "LIKE", count: likes }] : [],
  viewerReaction,
  views: 0,
  uniqueViewers: 0,
  ...extra,
});

/** Fake timers that leave setImmediate real, so `drive` can let real async work (SubtleCrypto) finish. */
export function useFakeTimers() {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Runs fake time forward in `stepMs` steps until `p` settles (bounded: a hang fails). */
export async function drive<T>(p: Promise<T>, stepMs = 50, maxSteps = 10_000): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < maxSteps && !done; i++) {
    await tick();
    if (!done) await vi.advanceTimersByTimeAsync(stepMs);
  }
  if (!done) throw new Error("promise did not settle");
  return p;
}

/** Lets real async work (SubtleCrypto, fetch doubles) run without moving fake time. */
export async function flushIO(rounds = 5) {
  for (let i = 0; i < rounds; i++) await tick();
}

/** Lets real async work run until `cond` holds (bounded: fails rather than hangs). */
export async function until(cond: () => boolean, rounds = 2000) {
  for (let i = 0; i < rounds && !cond(); i++) await tick();
  if (!cond()) throw new Error("condition not reached");
}
