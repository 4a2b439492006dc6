// The client side of view counting (README "Views"): trackers measure watch or dwell
// time honestly, and one queue sends every tracker's events in one recordViews call per
// heartbeat. The server decides what counts; nothing here claims a view.

import type { Http } from "./http";
import { randomId } from "./ids";
import { RECORD_VIEWS } from "./queries";
import { LikeviewError, type TrackOptions, type ViewDecision, type ViewEvent, type ViewTracker } from "./types";

const MAX_BATCH = 500; // recordViews' limit
const BEACON_BYTES = 60_000; // sendBeacon and fetch(keepalive) carry at most 64 KiB
const FEED_THRESHOLDS = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1];

const hidden = (): boolean => typeof document !== "undefined" && document.visibilityState === "hidden";

interface Source {
  /** The event for what accrued since the last one, or null when there is nothing to say. */
  take(final: boolean): ViewEvent | null;
  readonly sessionId: string;
  decided(d: ViewDecision): void;
  pageHidden(): void;
  pageShown(): void;
  restart(): void;
  stop(): Promise<void>;
}

export class ViewQueue {
  private queue: ViewEvent[] = [];
  private sources = new Set<Source>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private sending: Promise<void> | undefined;
  private detach: (() => void) | undefined;

  constructor(
    private readonly http: Http,
    private readonly heartbeatMs: number,
  ) {}

  add(s: Source): void {
    this.sources.add(s);
    this.timer ??= setInterval(() => void this.tick(), this.heartbeatMs);
    this.detach ??= this.listen();
  }

  remove(s: Source): void {
    this.sources.delete(s);
  }

  enqueue(ev: ViewEvent | null): void {
    if (ev) this.queue.push(ev);
  }

  /** Every tracker's accrued time, sent now in one request. */
  tick(): Promise<void> {
    for (const s of this.sources) this.enqueue(s.take(false));
    if (!this.sources.size && !this.queue.length) this.idle();
    return this.send();
  }

  /** Sends the queue; one request at a time, so events of a session arrive in order. */
  send(): Promise<void> {
    if (this.sending) return this.sending.then(() => this.send());
    if (!this.queue.length) return Promise.resolve();
    const batch = this.queue.splice(0, MAX_BATCH);
    const sent = this.post(batch);
    this.sending = sent.then(() => undefined);
    // After a failure the rest waits for the next heartbeat (or flush) too.
    return sent.then((ok) => {
      this.sending = undefined;
      return ok && this.queue.length ? this.send() : undefined;
    });
  }

  private async post(batch: ViewEvent[]): Promise<boolean> {
    try {
      const data = await this.http.request<{
        recordViews: { sessionId: string; decision: ViewDecision }[];
      }>(RECORD_VIEWS, { v: batch });
      data.recordViews.forEach((p, i) => this.decided(batch[i]?.sessionId ?? p.sessionId, p.decision));
      return true;
    } catch (e) {
      const err = e instanceof LikeviewError ? e : new LikeviewError(String(e), "NETWORK_ERROR");
      if (err.retryable) {
        // Kept for the next heartbeat: repeated eventIds are ignored by the server.
        this.queue.unshift(...batch);
        return false;
      }
      // A refused batch is all or nothing (a client bug or an unknown content): dropped,
      // not retried forever.
      console.warn("likeview: recordViews refused", err.code, err.message);
      return true;
    }
  }

  private decided(sessionId: string, d: ViewDecision): void {
    for (const s of this.sources) if (s.sessionId === sessionId) s.decided(d);
  }

  /** What must outlive the page: beaconed in chunks under the size limit. */
  beacon(final: boolean): void {
    for (const s of this.sources) this.enqueue(s.take(final));
    const events = this.queue.splice(0);
    let chunk: ViewEvent[] = [];
    let bytes = RECORD_VIEWS.length + 64;
    const flushChunk = (): void => {
      if (chunk.length && !this.http.beacon(RECORD_VIEWS, { v: chunk })) this.queue.push(...chunk);
      chunk = [];
      bytes = RECORD_VIEWS.length + 64;
    };
    for (const ev of events) {
      const size = JSON.stringify(ev).length + 1;
      if (chunk.length && (bytes + size > BEACON_BYTES || chunk.length >= MAX_BATCH)) flushChunk();
      chunk.push(ev);
      bytes += size;
    }
    flushChunk();
  }

  private listen(): () => void {
    if (typeof window === "undefined" || typeof document === "undefined") return () => undefined;
    const onVisibility = (): void => {
      if (hidden()) {
        for (const s of this.sources) s.pageHidden();
        // Mobile browsers may discard a hidden tab without pagehide: send what accrued.
        this.beacon(false);
      } else {
        for (const s of this.sources) s.pageShown();
      }
    };
    const onPageHide = (): void => this.beacon(true);
    const onPageShow = (e: PageTransitionEvent): void => {
      // Back from the bfcache: the sessions ended at pagehide, new ones begin.
      if (e.persisted) for (const s of this.sources) s.restart();
    };
    document.addEventListener("visibilitychange", onVisibility);
    window.addEventListener("pagehide", onPageHide);
    window.addEventListener("pageshow", onPageShow);
    return () => {
      document.removeEventListener("visibilitychange", onVisibility);
      window.removeEventListener("pagehide", onPageHide);
      window.removeEventListener("pageshow", onPageShow);
    };
  }

  private idle(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.detach?.();
    this.detach = undefined;
  }

  close(): void {
    for (const s of [...this.sources]) void s.stop();
    this.idle();
  }
}

/** One impression (feed) or playback (media): accrues time, makes events. */
class Tracker implements Source, ViewTracker {
  sessionId = randomId();
  private seq = 0;
  private sent = 0;
  private ended = false;
  private accrued = 0; // ms, fractional remainder kept
  // feed
  private ratio = 0;
  private since: number | undefined;
  private minRatio = Infinity;
  // media
  private playing = false;
  private lastPos: number | undefined; // s, the baseline of the next credit
  private lastWall = 0;
  private maxPosMs = -1;
  private sentPosMs = -1;
  private media: HTMLMediaElement | undefined;
  private readonly cleanup: (() => void)[] = [];

  constructor(
    private readonly queue: ViewQueue,
    element: HTMLElement,
    private readonly opts: TrackOptions,
    private readonly deviceId: string,
    private readonly minVisible: number,
  ) {
    if (opts.kind === "media") this.watchMedia(opts.media ?? (element as HTMLMediaElement));
    else this.watchFeed(element);
    queue.add(this);
  }

  // --- feed: IntersectionObserver for the visible fraction, dwell while enough is visible.

  private watchFeed(element: HTMLElement): void {
    const IO = globalThis.IntersectionObserver;
    if (!IO) {
      console.warn("likeview: no IntersectionObserver, feed dwell is not tracked");
      return;
    }
    const thresholds = [...new Set([...FEED_THRESHOLDS, this.minVisible])].sort((a, b) => a - b);
    const io = new IO(
      (entries) => {
        const last = entries[entries.length - 1];
        if (!last) return;
        this.settle();
        this.ratio = last.isIntersecting ? last.intersectionRatio : 0;
        this.settle();
      },
      { threshold: thresholds },
    );
    io.observe(element);
    this.cleanup.push(() => io.disconnect());
  }

  private feedRunning(): boolean {
    return !this.ended && !hidden() && this.ratio >= this.minVisible && this.ratio > 0;
  }

  /** Credits dwell up to now, and starts or stops the clock by the current state. */
  private settle(): void {
    if (this.opts.kind !== "feed") return;
    const now = Date.now();
    if (this.since !== undefined) {
      this.accrued += Math.max(0, now - this.since);
      this.minRatio = Math.min(this.minRatio, this.ratio);
    }
    this.since = this.feedRunning() ? now : undefined;
  }

  // --- media: played time from currentTime, never more than the wall clock passed.

  private watchMedia(media: HTMLMediaElement): void {
    const on = (type: string, fn: () => void): void => {
      media.addEventListener(type, fn);
      this.cleanup.push(() => media.removeEventListener(type, fn));
    };
    const start = (): void => {
      if (this.ended) this.restart();
      this.playing = true;
      this.baseline(media);
    };
    on("play", start);
    on("playing", start);
    on("timeupdate", () => this.credit(media));
    on("pause", () => {
      this.credit(media);
      this.playing = false;
      this.lastPos = undefined;
    });
    // currentTime is already the target at "seeking": the jump is never credited.
    on("seeking", () => {
      this.lastPos = undefined;
    });
    on("seeked", () => this.baseline(media));
    on("ended", () => {
      this.credit(media);
      this.playing = false;
      this.lastPos = undefined;
      this.queue.enqueue(this.take(true));
      void this.queue.send();
    });
    this.media = media;
  }

  private baseline(media: HTMLMediaElement): void {
    this.lastPos = this.playing && !hidden() && !media.seeking ? media.currentTime : undefined;
    this.lastWall = Date.now();
  }

  private credit(media: HTMLMediaElement): void {
    if (!this.playing || this.ended) return;
    const pos = media.currentTime;
    const now = Date.now();
    if (this.lastPos !== undefined && !hidden()) {
      const played = (pos - this.lastPos) * 1000;
      // Faster playback, or a skipped seek event, never credits more than wall time.
      if (played > 0) this.accrued += Math.min(played, Math.max(0, now - this.lastWall));
      if (played > 0) this.maxPosMs = Math.max(this.maxPosMs, Math.floor(pos * 1000));
    }
    this.lastPos = hidden() || media.seeking ? undefined : pos;
    this.lastWall = now;
  }

  // --- Source

  take(final: boolean): ViewEvent | null {
    if (this.ended) return null;
    if (this.opts.kind === "feed") this.settle();
    else if (this.media) this.credit(this.media);
    const watchedMs = Math.floor(this.accrued);
    const media = this.opts.kind === "media";
    const moved = media && this.maxPosMs > this.sentPosMs;
    if (!watchedMs && !moved && !(final && this.sent)) {
      if (final) this.end();
      return null;
    }
    this.accrued -= watchedMs;
    const ev: ViewEvent = {
      contentId: this.opts.contentId,
      sessionId: this.sessionId,
      deviceId: this.deviceId,
      eventId: String(++this.seq),
      watchedMs,
      platform: this.opts.platform ?? "WEB",
      final,
    };
    if (this.opts.source) ev.source = this.opts.source;
    if (media) {
      if (this.maxPosMs >= 0) ev.positionMs = this.maxPosMs;
      this.sentPosMs = this.maxPosMs;
    } else {
      // The least fraction seen while dwell accrued: what the credited time had at worst.
      ev.visibleFraction = round3(Number.isFinite(this.minRatio) ? this.minRatio : this.ratio);
      this.minRatio = Infinity;
    }
    this.sent++;
    if (final) this.end();
    return ev;
  }

  private end(): void {
    this.ended = true;
    this.since = undefined;
    this.lastPos = undefined;
  }

  decided(d: ViewDecision): void {
    this.opts.onDecision?.(d);
  }

  pageHidden(): void {
    if (this.opts.kind === "feed") this.settle();
    else if (this.media) {
      this.credit(this.media);
      this.lastPos = undefined;
    }
  }

  pageShown(): void {
    if (this.opts.kind === "feed") this.settle();
    else if (this.media) this.baseline(this.media);
  }

  restart(): void {
    this.sessionId = randomId();
    this.seq = 0;
    this.sent = 0;
    this.ended = false;
    this.accrued = 0;
    this.minRatio = Infinity;
    this.maxPosMs = -1;
    this.sentPosMs = -1;
    if (this.opts.kind === "feed") this.settle();
    else if (this.media) this.baseline(this.media);
  }

  // --- ViewTracker

  flush(): Promise<void> {
    return this.queue.tick();
  }

  stop(): Promise<void> {
    for (const c of this.cleanup.splice(0)) c();
    this.queue.enqueue(this.take(true));
    this.queue.remove(this);
    return this.queue.send();
  }
}

function round3(x: number): number {
  return Math.round(Math.min(1, Math.max(0, x)) * 1000) / 1000;
}

export function createTracker(
  queue: ViewQueue,
  element: HTMLElement,
  opts: TrackOptions,
  deviceId: string,
): ViewTracker {
  const min = opts.minVisibleFraction ?? 0.5;
  return new Tracker(queue, element, opts, deviceId, Math.min(1, Math.max(0, min)));
}
