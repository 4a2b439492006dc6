// The feed: one card per demo post, each with a reaction picker, live counts and the
// viewer's own reaction, and its impression tracked as it scrolls into view.
import type { ContentState, Likeview, ReactionType, Summary } from "../../sdk/src";
import {
  POSTS,
  REACTIONS,
  client,
  el,
  plural,
  registerDemoContents,
  renderSession,
  showError,
  signIn,
} from "./common";

interface Shown {
  viewerReaction: ReactionType | null;
  likes: number;
  counts: Map<ReactionType, number>;
  views: number | null;
  pending: boolean;
}

function shown(state: ContentState | undefined, live: Summary | undefined): Shown {
  // The SDK's state is the optimistic truth once this viewer touched the content;
  // views only come with summaries.
  const source = state ?? live;
  const counts = new Map<ReactionType, number>();
  for (const r of source?.reactions ?? []) counts.set(r.reaction, r.count);
  return {
    viewerReaction: source?.viewerReaction ?? null,
    likes: source?.likes ?? 0,
    counts,
    views: live ? live.views : (state?.summary?.views ?? null),
    pending: state?.pending ?? false,
  };
}

function card(lv: Likeview, postId: string, title: string, hue: number): HTMLElement {
  const article = el("article", {
    class: "card",
    "data-content-id": postId,
    "aria-labelledby": `${postId}-title`,
  });
  const picture = el("div", {
    class: "picture",
    style: `background: linear-gradient(135deg, hsl(${hue} 70% 60%), hsl(${(hue + 60) % 360} 70% 40%))`,
    role: "img",
    "aria-label": `Illustration for ${title}. Double-click to like.`,
  });
  article.append(picture, el("h2", { id: `${postId}-title` }, title));

  const picker = el("div", { class: "reactions", role: "group", "aria-label": `React to ${title}` });
  for (const r of REACTIONS) {
    const button = el("button", {
      type: "button",
      class: "reaction",
      "data-reaction": r.type,
      "aria-pressed": "false",
      "aria-label": r.label,
    });
    button.append(el("span", { "aria-hidden": "true" }, r.emoji), el("span", { class: "n" }, "0"));
    button.addEventListener("click", (ev) => {
      // The second click of a double-click is a double tap: it means "like", never
      // "take it back" (the SDK makes the first count once, even if retried).
      if (ev.detail > 1) return;
      const current = lv.state(postId)?.viewerReaction ?? null;
      const outcome = current === r.type ? lv.unlike(postId) : lv.like(postId, r.type);
      void outcome.then((o) => {
        if (!o.ok && o.error) showError(o.error);
      });
    });
    picker.append(button);
  }
  // Double-clicking the picture likes (as on phones), once, and never unlikes.
  picture.addEventListener("dblclick", () => {
    if (!lv.state(postId)?.viewerReaction) void lv.like(postId, "LIKE");
  });
  const counts = el("p", { class: "counts", "aria-live": "polite", "aria-atomic": "true" });
  counts.append(
    el("span", { class: "likes", "data-likes": "0" }, "0 reactions"),
    document.createTextNode(" · "),
    el("span", { class: "views", "data-views": "" }, "views not yet known"),
  );
  article.append(picker, counts);
  return article;
}

function render(article: HTMLElement, s: Shown): void {
  article.toggleAttribute("aria-busy", s.pending);
  for (const button of article.querySelectorAll<HTMLButtonElement>("button.reaction")) {
    const type = button.dataset.reaction as ReactionType;
    button.setAttribute("aria-pressed", String(s.viewerReaction === type));
    const n = s.counts.get(type) ?? 0;
    (button.querySelector(".n") as HTMLElement).textContent = String(n);
    const label = REACTIONS.find((r) => r.type === type)?.label ?? type;
    button.setAttribute("aria-label", `${label}, ${plural(n, "reaction", "reactions")}`);
  }
  const likes = article.querySelector(".likes") as HTMLElement;
  likes.dataset.likes = String(s.likes);
  likes.textContent = plural(s.likes, "reaction", "reactions");
  if (s.views !== null) {
    const views = article.querySelector(".views") as HTMLElement;
    views.dataset.views = String(s.views);
    views.textContent = plural(s.views, "view", "views");
  }
}

async function main(): Promise<void> {
  const [session] = await Promise.all([signIn("alice"), registerDemoContents()]);
  renderSession(session);
  const lv = client(session);
  const feed = document.getElementById("feed") as HTMLElement;
  const cards = new Map<string, HTMLElement>();
  const live = new Map<string, Summary>();
  for (const post of POSTS) {
    const article = card(lv, post.id, post.title, post.hue);
    cards.set(post.id, article);
    feed.append(article);
    lv.trackViews(article, { contentId: post.id, kind: "feed", source: "FEED" });
  }
  const update = (id: string) => {
    const article = cards.get(id);
    if (article) render(article, shown(lv.state(id), live.get(id)));
  };
  lv.onState((id) => update(id));
  lv.watchSummaries([...cards.keys()], (s) => {
    live.set(s.contentId, s);
    update(s.contentId);
  });
  document.body.dataset.ready = "true";
  // For the browser tests and the curious: the client this page uses.
  (window as unknown as { likeview: Likeview }).likeview = lv;
}

main().catch(showError);
