import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createLikeview, LikeviewError } from "../src";
import { fakeFetch, gqlError, memoryStorage } from "./helpers";

const Q = "{ engagementSummary(contentId: \"v1\") { likes } }";
const HASH = createHash("sha256").update(Q).digest("hex");

function client(handler: Parameters<typeof fakeFetch>[0], getToken?: () => string | null) {
  const f = fakeFetch(handler);
  const lv = createLikeview({ url: "/graphql", fetch: f.fetch, getToken, storage: memoryStorage() });
  return { lv, calls: f.calls };
}

describe("request with automatic persisted queries", () => {
  it("sends the hash alone, then the text with its hash on PERSISTED_QUERY_NOT_FOUND, then the hash alone", async () => {
    const known = new Set<string>();
    const { lv, calls } = client((body) => {
      const h = body.extensions?.persistedQuery?.sha256Hash;
      if (h && !body.query && !known.has(h)) return gqlError("PERSISTED_QUERY_NOT_FOUND");
      if (h && body.query) known.add(h);
      return { data: { engagementSummary: { likes: 3 } } };
    });
    expect(await lv.request(Q)).toEqual({ engagementSummary: { likes: 3 } });
    expect(await lv.request(Q)).toEqual({ engagementSummary: { likes: 3 } });
    expect(calls.map((c) => [c.body.query ?? null, c.body.extensions.persistedQuery])).toEqual([
      [null, { version: 1, sha256Hash: HASH }],
      [Q, { version: 1, sha256Hash: HASH }],
      [null, { version: 1, sha256Hash: HASH }],
    ]);
  });

  it("falls back to plain text for good when the server does not support APQ", async () => {
    const { lv, calls } = client((body) =>
      body.extensions ? gqlError("PERSISTED_QUERY_NOT_SUPPORTED") : { data: { ok: true } },
    );
    await lv.request(Q);
    await lv.request(Q);
    expect(calls.map((c) => Boolean(c.body.extensions))).toEqual([true, false, false]);
  });

  it("sends the token as a bearer header, none when anonymous", async () => {
    let token: string | null = "t1";
    const { lv, calls } = client(() => ({ data: {} }), () => token);
    await lv.request(Q);
    token = null;
    await lv.request(Q);
    expect(calls[0].headers.authorization).toBe("Bearer t1");
    expect(calls[1].headers.authorization).toBeUndefined();
  });

  it("rejects with the error's code and retryAfterMs", async () => {
    const { lv } = client(() => gqlError("RATE_LIMITED", { retryAfterMs: 1234 }));
    const err = await lv.request(Q).catch((e) => e);
    expect(err).toBeInstanceOf(LikeviewError);
    expect([err.code, err.retryAfterMs, err.retryable]).toEqual(["RATE_LIMITED", 1234, true]);
  });

  it("reports a network failure as NETWORK_ERROR", async () => {
    const { lv } = client(() => new TypeError("Failed to fetch"));
    const err = await lv.request(Q).catch((e) => e);
    expect([err.code, err.retryable]).toEqual(["NETWORK_ERROR", true]);
  });
});
