// Likeview's browser SDK: the public API. See README.md beside this folder.
export { createLikeview } from "./client";
export { LikeviewError } from "./types";
export type {
  ClientPlatform,
  ContentState,
  LikeOutcome,
  Likeview,
  LikeviewOptions,
  ReactionCount,
  ReactionType,
  Summary,
  TokenSource,
  TrackKind,
  TrackOptions,
  ViewDecision,
  ViewEvent,
  ViewSource,
  ViewTracker,
} from "./types";
