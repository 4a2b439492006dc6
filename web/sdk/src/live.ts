// Live summaries over graphql-transport-ws (README "Live counters over WebSocket").
// graphql-ws reconnects with backoff and subscribes again; the server then sends the
// current summaries first, so a reconnected client is consistent at once.

import { createClient, type Client } from "graphql-ws";
import { toError } from "./http";
import { ENGAGEMENT_UPDATED } from "./queries";
import type { LikeviewError, Summary, TokenSource } from "./types";

const MAX_WAIT_MS = 30_000;

/** The ws(s) URL of an http(s) or page-relative GraphQL URL. */
export function deriveWsUrl(url: string, base?: string): string {
  const u = new URL(url, base ?? globalThis.location?.href ?? "http://localhost/");
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

/** Exponential backoff with full jitter, capped; the first retry comes within a second. */
export function backoffMs(retries: number, random: () => number = Math.random): number {
  const cap = Math.min(MAX_WAIT_MS, 1000 * 2 ** retries);
  return Math.floor(cap / 2 + random() * (cap / 2));
}

export function createLive(
  wsUrl: string,
  getToken: TokenSource | undefined,
  factory: typeof createClient = createClient,
): Client {
  return factory({
    url: wsUrl,
    lazy: true,
    // Read at each (re)connection, so a refreshed token is used.
    connectionParams: async () => {
      const token = await getToken?.();
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, backoffMs(retries))),
    keepAlive: 15_000,
  });
}

export function subscribeSummaries(
  client: Client,
  ids: string[],
  onSummary: (s: Summary) => void,
  onError: (e: LikeviewError) => void,
): () => void {
  return client.subscribe<{ engagementUpdated: Summary }>(
    { query: ENGAGEMENT_UPDATED, variables: { ids } },
    {
      next: (result) => {
        if (result.errors?.length) onError(toError(result.errors[0] as never, 200));
        const s = result.data?.engagementUpdated;
        if (s) onSummary(s);
      },
      error: (e) => {
        // Only what graphql-ws will not retry ends here: a refused subscription, or a close.
        if (Array.isArray(e)) onError(toError(e[0] as never, 200));
        else onError(toError({ message: String((e as { reason?: string })?.reason ?? e), extensions: { code: "WS_CLOSED" } }, 0));
      },
      complete: () => undefined,
    },
  );
}
