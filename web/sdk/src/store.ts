// The local view of each content: the server's last summary (the base) with the
// viewer's pending changes laid on top, so a tap shows at once and a failure rolls
// back to exactly what the server said.

import type { ContentState, LikeviewError, ReactionCount, ReactionType, Summary } from "./types";

/** One pending change of the viewer's reaction: to a reaction, or to none. */
export interface Intent {
  reaction: ReactionType | null;
  requestId: string;
  /** The content's push count at the tap: a later push may already show this change. */
  pushesAtTap: number;
}

interface Shown {
  viewerReaction: ReactionType | null;
  likes: number;
  reactions: ReactionCount[];
}

interface Entry {
  base?: Summary;
  /** Pushes taken in, to tell whether one came while a mutation was in flight. */
  pushes: number;
  intents: Intent[];
  error?: LikeviewError;
  /** After a confirmed change: pushes that still show another viewerReaction are older. */
  guard?: { reaction: ReactionType | null; until: number; deferred?: Summary; timer?: ReturnType<typeof setTimeout> };
}

// How long a push may lag behind the mutation's answer (README: "usually a few
// milliseconds" until the aggregator has the change); past it a push is believed.
export const GUARD_MS = 3000;

/** The counts after the viewer's reaction becomes `to`. Pure. */
export function applyReaction(s: Shown, to: ReactionType | null): Shown {
  const from = s.viewerReaction;
  if (from === to) return s;
  const counts = new Map(s.reactions.map((r) => [r.reaction, r.count] as const));
  if (from) counts.set(from, Math.max(0, (counts.get(from) ?? 0) - 1));
  if (to) counts.set(to, (counts.get(to) ?? 0) + 1);
  const reactions: ReactionCount[] = [];
  for (const [reaction, count] of counts) if (count > 0) reactions.push({ reaction, count });
  const likes = Math.max(0, s.likes - (from ? 1 : 0) + (to ? 1 : 0));
  return { viewerReaction: to, likes, reactions };
}

const EMPTY: Shown = { viewerReaction: null, likes: 0, reactions: [] };

export class Store {
  private entries = new Map<string, Entry>();
  private listeners = new Set<(contentId: string, s: ContentState) => void>();

  entry(contentId: string): Entry {
    let e = this.entries.get(contentId);
    if (!e) {
      e = { intents: [], pushes: 0 };
      this.entries.set(contentId, e);
    }
    return e;
  }

  state(contentId: string): ContentState | undefined {
    const e = this.entries.get(contentId);
    if (!e || (!e.base && !e.intents.length && !e.error)) return undefined;
    let shown: Shown = e.base ?? EMPTY;
    for (const i of e.intents) shown = applyReaction(shown, i.reaction);
    return {
      viewerReaction: shown.viewerReaction,
      likes: shown.likes,
      reactions: shown.reactions,
      pending: e.intents.length > 0,
      summary: e.base,
      error: e.error,
    };
  }

  /** The state as a Summary (views from the last server summary). */
  summary(contentId: string): Summary | undefined {
    const s = this.state(contentId);
    if (!s) return undefined;
    return {
      contentId,
      likes: s.likes,
      reactions: s.reactions,
      viewerReaction: s.viewerReaction,
      views: s.summary?.views ?? 0,
      uniqueViewers: s.summary?.uniqueViewers ?? 0,
    };
  }

  onState(listener: (contentId: string, s: ContentState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(contentId: string): void {
    const s = this.state(contentId);
    if (!s) return;
    for (const l of [...this.listeners]) l(contentId, s);
  }

  addIntent(contentId: string, intent: Intent): void {
    const e = this.entry(contentId);
    e.intents.push(intent);
    e.error = undefined;
    this.emit(contentId);
  }

  /** The mutation answered: its summary becomes the base unless a push already showed the change. */
  confirm(contentId: string, intent: Intent, summary: Summary, pushesAtTap: number): void {
    const e = this.entry(contentId);
    e.intents = e.intents.filter((i) => i !== intent);
    const base = e.base;
    // A push that arrived during the request and already shows this change came after
    // the write too, through the ordered stream: keep it rather than go back to the answer.
    const pushedSince = e.pushes > pushesAtTap;
    if (!(pushedSince && base && base.viewerReaction === summary.viewerReaction)) e.base = summary;
    this.setGuard(contentId, e, summary.viewerReaction);
    this.emit(contentId);
  }

  /** The mutation failed for good: drop its change, keep the error to show. */
  rollback(contentId: string, intent: Intent, error: LikeviewError): void {
    const e = this.entry(contentId);
    e.intents = e.intents.filter((i) => i !== intent);
    e.error = error;
    this.emit(contentId);
  }

  /** A summary from the server's live stream (or a read). Returns false when it was held back as older. */
  push(summary: Summary, now: number = Date.now()): boolean {
    const e = this.entry(summary.contentId);
    const g = e.guard;
    if (g) {
      if (summary.viewerReaction === g.reaction || now >= g.until) {
        this.clearGuard(e);
      } else {
        // Older than the mutation's answer, or another device's later change: shown once the
        // guard ends unless a push showing this viewer's change comes first.
        g.deferred = summary;
        return false;
      }
    }
    e.base = summary;
    e.pushes++;
    this.emit(summary.contentId);
    return true;
  }

  private setGuard(contentId: string, e: Entry, reaction: ReactionType | null): void {
    this.clearGuard(e);
    const guard: NonNullable<Entry["guard"]> = { reaction, until: Date.now() + GUARD_MS };
    guard.timer = setTimeout(() => {
      if (e.guard !== guard) return;
      e.guard = undefined;
      if (guard.deferred) {
        e.base = guard.deferred;
        e.pushes++;
        this.emit(contentId);
      }
    }, GUARD_MS);
    e.guard = guard;
  }

  private clearGuard(e: Entry): void {
    if (e.guard?.timer) clearTimeout(e.guard.timer);
    e.guard = undefined;
  }

  close(): void {
    for (const e of this.entries.values()) this.clearGuard(e);
    this.listeners.clear();
  }
}
