// createLikeview: one client per page, sharing the HTTP transport, the WebSocket, the
// local like state and the view queue.

import type { Client } from "graphql-ws";
import { Http } from "./http";
import { defaultStorage, loadDeviceId, randomId } from "./ids";
import { backoffMs, createLive, deriveWsUrl, subscribeSummaries } from "./live";
import { LIKE, UNLIKE } from "./queries";
import { Store, type Intent } from "./store";
import {
  LikeviewError,
  type ContentState,
  type LikeOutcome,
  type Likeview,
  type LikeviewOptions,
  type ReactionType,
  type Summary,
  type TrackOptions,
  type ViewTracker,
} from "./types";
import { ViewQueue, createTracker } from "./views";

interface LikePayload {
  contentId: string;
  viewerReaction: ReactionType | null;
  changed: boolean;
  summary: Summary;
}

const MAX_IDS = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function createLikeview(opts: LikeviewOptions): Likeview {
  const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const http = new Http(opts.url, fetchFn, opts.getToken);
  const storage = opts.storage === undefined ? defaultStorage() : opts.storage;
  const deviceId = loadDeviceId(storage);
  const maxRetries = opts.maxRetries ?? 3;
  const store = new Store();
  const views = new ViewQueue(http, opts.heartbeatMs ?? 5000);
  let ws: Client | undefined;
  let closed = false;
  // The last intent per content: the chain that serialises its mutations.
  const inflight = new Map<string, { intent: Intent; done: Promise<LikeOutcome> }>();

  async function send(contentId: string, intent: Intent): Promise<LikeOutcome> {
    const input: Record<string, unknown> = { contentId, requestId: intent.requestId, deviceId };
    if (intent.reaction) input.reaction = intent.reaction;
    for (let attempt = 0; ; attempt++) {
      try {
        const data = await http.request<{ like?: LikePayload; unlike?: LikePayload }>(
          intent.reaction ? LIKE : UNLIKE,
          { input },
        );
        const p = (data.like ?? data.unlike) as LikePayload;
        store.confirm(contentId, intent, p.summary, intent.pushesAtTap);
        return { ok: true, changed: p.changed, viewerReaction: p.viewerReaction, summary: p.summary };
      } catch (e) {
        const err = e instanceof LikeviewError ? e : new LikeviewError(String(e), "NETWORK_ERROR");
        if (err.retryable && attempt < maxRetries && !closed) {
          // The same requestId: if the first try landed, the server replays its answer.
          await sleep(err.retryAfterMs ?? backoffMs(attempt));
          continue;
        }
        store.rollback(contentId, intent, err);
        const s = store.state(contentId);
        return { ok: false, changed: false, viewerReaction: s?.viewerReaction ?? null, error: err };
      }
    }
  }

  function change(contentId: string, reaction: ReactionType | null): Promise<LikeOutcome> {
    const last = inflight.get(contentId);
    // A double tap (or a second call before the first answered) is the same request.
    if (last && last.intent.reaction === reaction) return last.done;
    const intent: Intent = { reaction, requestId: randomId(), pushesAtTap: store.entry(contentId).pushes };
    store.addIntent(contentId, intent);
    const before = last?.done ?? Promise.resolve(undefined);
    const done = before.then(() => send(contentId, intent));
    const entry = { intent, done };
    inflight.set(contentId, entry);
    void done.finally(() => {
      if (inflight.get(contentId) === entry) inflight.delete(contentId);
    });
    return done;
  }

  function live(): Client {
    ws ??= createLive(opts.wsUrl ?? deriveWsUrl(opts.url), opts.getToken, opts.createWsClient);
    return ws;
  }

  return {
    deviceId,
    request: (query, variables) => http.request(query, variables),
    like: (contentId, reaction = "LIKE") => change(contentId, reaction),
    unlike: (contentId) => change(contentId, null),
    state: (contentId): ContentState | undefined => store.state(contentId),
    onState: (listener) => store.onState(listener),
    watchSummaries(ids, onChange, onError) {
      const wanted = new Set(ids);
      const off = store.onState((cid) => {
        if (!wanted.has(cid)) return;
        const s = store.summary(cid);
        if (s) onChange(s);
      });
      const all = [...wanted];
      const stops: (() => void)[] = [];
      // The server takes at most MAX_IDS ids per subscription.
      for (let i = 0; i < all.length; i += MAX_IDS) {
        stops.push(
          subscribeSummaries(
            live(),
            all.slice(i, i + MAX_IDS),
            (s) => store.push(s),
            onError ?? ((e) => console.warn("likeview: engagementUpdated", e.code, e.message)),
          ),
        );
      }
      return () => {
        off();
        for (const stop of stops) stop();
      };
    },
    trackViews: (element: HTMLElement, o: TrackOptions): ViewTracker => createTracker(views, element, o, deviceId),
    close() {
      closed = true;
      views.close();
      store.close();
      void ws?.dispose();
      ws = undefined;
    },
  };
}
