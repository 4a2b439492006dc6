// GraphQL over HTTP with automatic persisted queries (README "Browsers and client
// libraries"): the hash alone first, the text only when the server does not know it.

import { sha256Hex } from "./sha256";
import { LikeviewError, type TokenSource } from "./types";

const NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND";
const NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED";

interface GraphQLErrorShape {
  message?: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

export function toError(e: GraphQLErrorShape, status: number): LikeviewError {
  const ext = e.extensions ?? {};
  const code = typeof ext.code === "string" ? ext.code : `HTTP_${status}`;
  const retry = typeof ext.retryAfterMs === "number" ? ext.retryAfterMs : undefined;
  return new LikeviewError(e.message ?? code, code, { retryAfterMs: retry, path: e.path, extensions: ext });
}

export class Http {
  private hashes = new Map<string, string>();
  private apq = true;
  private cachedToken: string | null = null;

  constructor(
    readonly url: string,
    private readonly fetchFn: typeof fetch,
    private readonly getToken: TokenSource | undefined,
  ) {}

  async token(): Promise<string | null> {
    const t = (await this.getToken?.()) ?? null;
    this.cachedToken = t;
    return t;
  }

  /** The token without waiting, for page unload: a synchronous getToken's, else the last one seen. */
  tokenNow(): string | null {
    if (!this.getToken) return null;
    try {
      const t = this.getToken();
      if (t == null || typeof t === "string") {
        this.cachedToken = t ?? null;
        return this.cachedToken;
      }
    } catch {
      // fall through to the last known token
    }
    return this.cachedToken;
  }

  private headers(token: string | null): Record<string, string> {
    const h: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
    if (token) h.authorization = `Bearer ${token}`;
    return h;
  }

  private hashOf(query: string): string {
    let h = this.hashes.get(query);
    if (!h) {
      h = sha256Hex(query);
      this.hashes.set(query, h);
    }
    return h;
  }

  async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const hash = this.apq ? this.hashOf(query) : null;
    if (hash) {
      const ext = { persistedQuery: { version: 1, sha256Hash: hash } };
      try {
        return await this.post<T>({ variables, extensions: ext });
      } catch (e) {
        if (!(e instanceof LikeviewError)) throw e;
        if (e.code === NOT_SUPPORTED) this.apq = false;
        else if (e.code !== NOT_FOUND) throw e;
        // The text with its hash registers it for the next time.
        if (this.apq) return this.post<T>({ query, variables, extensions: ext });
      }
    }
    return this.post<T>({ query, variables });
  }

  private async post<T>(body: Record<string, unknown>): Promise<T> {
    const token = await this.token();
    let res: Response;
    try {
      res = await this.fetchFn(this.url, {
        method: "POST",
        headers: this.headers(token),
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw new LikeviewError(e instanceof Error ? e.message : String(e), "NETWORK_ERROR");
    }
    let payload: { data?: T; errors?: GraphQLErrorShape[] } | undefined;
    try {
      payload = await res.json();
    } catch {
      payload = undefined;
    }
    if (payload?.errors?.length) throw toError(payload.errors[0], res.status);
    if (!res.ok || !payload || payload.data == null) {
      throw new LikeviewError(`HTTP ${res.status}`, `HTTP_${res.status}`);
    }
    return payload.data;
  }

  /**
   * Sends a request that must outlive the page (pagehide). Anonymous: navigator.sendBeacon
   * (a JSON Blob; same origin needs nothing else, another origin a CORS preflight). With a
   * token: fetch(keepalive), since a beacon cannot carry the Authorization header and the
   * server would take it for an anonymous caller. Returns whether it was handed over.
   */
  beacon(query: string, variables: Record<string, unknown>): boolean {
    const body = JSON.stringify({ query, variables });
    const token = this.tokenNow();
    const nav = globalThis.navigator;
    if (!token && nav && typeof nav.sendBeacon === "function") {
      try {
        if (nav.sendBeacon(this.url, new Blob([body], { type: "application/json" }))) return true;
      } catch {
        // Some browsers refuse a non-form Blob type: fetch(keepalive) below.
      }
    }
    try {
      this.fetchFn(this.url, { method: "POST", keepalive: true, headers: this.headers(token), body }).catch(
        () => undefined,
      );
      return true;
    } catch {
      return false;
    }
  }
}
