// The SDK's public types. Field names follow schema.graphql, so a value can be
// logged next to the server's answer and read the same way.

export type ReactionType = "LIKE" | "LOVE" | "LAUGH" | "WOW" | "SAD" | "ANGRY";

export type ViewSource =
  | "FEED"
  | "SEARCH"
  | "PROFILE"
  | "NOTIFICATION"
  | "EXTERNAL"
  | "DIRECT"
  | "AUTOPLAY";

export type ClientPlatform = "IOS" | "ANDROID" | "WEB" | "TV" | "EMBEDDED";

export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

export interface LikeviewOptions {
  /** GraphQL over HTTP endpoint, e.g. "/graphql" (relative to the page) or an absolute URL. */
  url: string;
  /** graphql-transport-ws endpoint; by default `url` with http(s) turned into ws(s). */
  wsUrl?: string;
  /** The viewer's JWT, or nothing when anonymous. Called before each request and connection. */
  getToken?: TokenSource;
  /** For tests: the fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** Where the anonymous device id lives (default: localStorage, in memory when unavailable). */
  storage?: Pick<Storage, "getItem" | "setItem"> | null;
  /** How many times a like/unlike is retried on a network error or RATE_LIMITED (default 3). */
  maxRetries?: number;
  /** How often the trackers' accrued time is sent, batched in one recordViews, in ms (default 5000). */
  heartbeatMs?: number;
  /** For tests: the graphql-ws client factory (default: graphql-ws's createClient). */
  createWsClient?: typeof import("graphql-ws").createClient;
}

export interface ReactionCount {
  reaction: ReactionType;
  count: number;
}

/** An EngagementSummary as the SDK reads it (live pushes and mutation answers). */
export interface Summary {
  contentId: string;
  likes: number;
  reactions: ReactionCount[];
  /** The viewer's own active reaction; null when none or anonymous. */
  viewerReaction: ReactionType | null;
  views: number;
  uniqueViewers: number;
}

/** The local, optimistic view of one content: what a like button shows. */
export interface ContentState {
  /** The viewer's reaction as shown: the optimistic one while a request is pending. */
  viewerReaction: ReactionType | null;
  /** Likes as shown (active reactions of every type), optimistic while pending. */
  likes: number;
  reactions: ReactionCount[];
  /** A like/unlike is in flight. */
  pending: boolean;
  /** The last confirmed summary from the server, if any. */
  summary?: Summary;
  /** The error that rolled back the last optimistic change, until the next change. */
  error?: LikeviewError;
}

export interface LikeOutcome {
  ok: boolean;
  /** The server applied a change (false for a repeat that changed nothing). */
  changed: boolean;
  viewerReaction: ReactionType | null;
  summary?: Summary;
  /** Set when ok is false: the change was rolled back. */
  error?: LikeviewError;
}

export type TrackKind = "feed" | "media";

export interface TrackOptions {
  contentId: string;
  /** "feed": an impression (IntersectionObserver); "media": a <video>/<audio> playback. */
  kind: TrackKind;
  source?: ViewSource;
  /** Default WEB. */
  platform?: ClientPlatform;
  /** Feed: the visible fraction from which dwell accrues (default 0.5). */
  minVisibleFraction?: number;
  /** Media: the element whose playback is tracked; default `element` itself when it is media. */
  media?: HTMLMediaElement;
  /** Each server decision for this session, as it arrives. */
  onDecision?: (d: ViewDecision) => void;
}

export interface ViewDecision {
  counted: boolean;
  rule: string;
  reason: string;
}

export interface ViewTracker {
  /** This tracker's view session (one playback or impression). */
  readonly sessionId: string;
  /** Sends the final event and stops observing. */
  stop(): Promise<void>;
  /** Sends what has accrued now (also the queued events of other trackers). */
  flush(): Promise<void>;
}

/** One recordViews input, as sent. */
export interface ViewEvent {
  contentId: string;
  sessionId: string;
  deviceId: string;
  eventId: string;
  watchedMs: number;
  positionMs?: number;
  visibleFraction?: number;
  source?: ViewSource;
  platform?: ClientPlatform;
  final: boolean;
}

export interface Likeview {
  /** A query or mutation over HTTP with automatic persisted queries. Rejects with LikeviewError. */
  request<T = unknown>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** Optimistic like (or reaction change); retries reuse one requestId. */
  like(contentId: string, reaction?: ReactionType): Promise<LikeOutcome>;
  /** Optimistic unlike; retries reuse one requestId. */
  unlike(contentId: string): Promise<LikeOutcome>;
  /** The local optimistic view of a content, once anything is known of it. */
  state(contentId: string): ContentState | undefined;
  /** Called on every change of a content's local state; returns an unsubscribe function. */
  onState(listener: (contentId: string, s: ContentState) => void): () => void;
  /** Live summaries (with the viewer's state) over WebSocket; returns a stop function. */
  watchSummaries(
    ids: string[],
    onChange: (s: Summary) => void,
    onError?: (e: LikeviewError) => void,
  ): () => void;
  /** Tracks views of a feed card or a media element; see TrackOptions. */
  trackViews(element: HTMLElement, opts: TrackOptions): ViewTracker;
  /** The stable anonymous device id (localStorage). */
  readonly deviceId: string;
  /** Stops every tracker (sending their final events), closes the WebSocket. */
  close(): void;
}

export class LikeviewError extends Error {
  /** extensions.code of the GraphQL error, or NETWORK_ERROR / HTTP_<status>. */
  readonly code: string;
  /** For RATE_LIMITED: when the same request would pass. */
  readonly retryAfterMs?: number;
  readonly path?: ReadonlyArray<string | number>;
  readonly extensions?: Record<string, unknown>;

  constructor(
    message: string,
    code: string,
    extra: { retryAfterMs?: number; path?: ReadonlyArray<string | number>; extensions?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.name = "LikeviewError";
    this.code = code;
    this.retryAfterMs = extra.retryAfterMs;
    this.path = extra.path;
    this.extensions = extra.extensions;
  }

  /** Whether sending the very same request again may succeed. */
  get retryable(): boolean {
    return (
      this.code === "NETWORK_ERROR" ||
      this.code === "RATE_LIMITED" ||
      this.code === "UNAVAILABLE" ||
      this.code === "IDEMPOTENCY_KEY_IN_USE" ||
      /^HTTP_5\d\d$/.test(this.code)
    );
  }
}
