// What every page shares: the demo catalogue, the demo sign-in, the SDK client and
// the page header. The app is served by the service itself (/app/), so the API is
// same-origin: /graphql and, in development only, /dev/token.
import { createLikeview } from "../../sdk/src";
import type { Likeview, ReactionType } from "../../sdk/src";

export const GRAPHQL_URL = "/graphql";
export const DEV_TOKEN_URL = "/dev/token";
export const CREATOR = "demo-creator";
export const VIDEO_ID = "demo-clip";
export const VIDEO_DURATION_MS = 40_000;

export interface DemoPost {
  id: string;
  title: string;
  hue: number;
}

export const POSTS: DemoPost[] = [
  { id: "demo-post-1", title: "Sunrise over the harbour", hue: 24 },
  { id: "demo-post-2", title: "Ten minute weeknight noodles", hue: 48 },
  { id: "demo-post-3", title: "A walk through the old town", hue: 150 },
  { id: "demo-post-4", title: "How a bicycle wheel is trued", hue: 200 },
  { id: "demo-post-5", title: "First snow in the valley", hue: 220 },
  { id: "demo-post-6", title: "The market on a Saturday", hue: 320 },
];

export const REACTIONS: { type: ReactionType; emoji: string; label: string }[] = [
  { type: "LIKE", emoji: "👍", label: "Like" },
  { type: "LOVE", emoji: "❤️", label: "Love" },
  { type: "LAUGH", emoji: "😂", label: "Laugh" },
  { type: "WOW", emoji: "😮", label: "Wow" },
  { type: "SAD", emoji: "😢", label: "Sad" },
  { type: "ANGRY", emoji: "😠", label: "Angry" },
];

export interface Session {
  userId: string | null;
  token: string | null;
  /** The server hands out development tokens (JWT_SECRET unset). */
  devTokens: boolean;
}

interface DevToken {
  token: string;
  userId: string;
  roles: string[];
  expiresIn: number;
}

/** A development token from POST /dev/token; null when the route is absent (404). */
export async function devToken(userId: string, roles: string[] = []): Promise<DevToken | null> {
  const res = await fetch(DEV_TOKEN_URL, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ userId, roles }),
  });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`dev token: HTTP ${res.status}: ${await res.text()}`);
  return (await res.json()) as DevToken;
}

/**
 * The viewer: `?user=NAME` in the address (remembered), else the last one, else
 * `fallback`. Without dev tokens the app browses anonymously.
 */
export async function signIn(fallback: string): Promise<Session> {
  const params = new URLSearchParams(location.search);
  // ?anonymous: no token at all, as a signed-out visitor (views then go by device id).
  if (params.has("anonymous")) {
    return { userId: null, token: null, devTokens: (await devToken("probe")) !== null };
  }
  const asked = params.get("user");
  if (asked) localStorage.setItem("likeview.user", asked);
  const userId = asked || localStorage.getItem("likeview.user") || fallback;
  const issued = await devToken(userId);
  if (issued === null) return { userId: null, token: null, devTokens: false };
  return { userId, token: issued.token, devTokens: true };
}

const REGISTER = `mutation Register($inputs: [RegisterContentInput!]!) {
  registerContents(inputs: $inputs) { contentId }
}`;

/**
 * Registers the demo catalogue (idempotent) with a service token. Only possible
 * with dev tokens: against a real deployment the contents come from its catalogue.
 */
export async function registerDemoContents(): Promise<void> {
  const service = await devToken("demo-seed", ["service"]);
  if (service === null) return;
  const inputs = [
    { contentId: VIDEO_ID, creatorId: CREATOR, kind: "VIDEO", durationMs: VIDEO_DURATION_MS },
    ...POSTS.map((p) => ({ contentId: p.id, creatorId: CREATOR, kind: "POST" })),
  ];
  const res = await fetch(GRAPHQL_URL, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${service.token}` },
    body: JSON.stringify({ query: REGISTER, variables: { inputs } }),
  });
  const body = (await res.json()) as { errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(`registering the demo contents: ${body.errors[0].message}`);
}

export function client(session: Session): Likeview {
  return createLikeview({ url: GRAPHQL_URL, getToken: () => session.token });
}

/** The page header's sign-in line and the switch-user form. */
export function renderSession(session: Session): void {
  const who = document.getElementById("who");
  if (who) {
    who.textContent = session.userId
      ? `Signed in as ${session.userId} (development token)`
      : session.devTokens
        ? "Browsing anonymously"
        : "Browsing anonymously: development sign-in is off on this server (JWT_SECRET is set)";
  }
  const form = document.getElementById("switch-user") as HTMLFormElement | null;
  if (!form) return;
  form.hidden = !session.devTokens;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = form.elements.namedItem("user") as HTMLInputElement;
    const url = new URL(location.href);
    url.searchParams.set("user", input.value.trim());
    location.assign(url.toString());
  });
}

/** Shows a failure where a screen reader announces it. */
export function showError(err: unknown): void {
  const box = document.getElementById("status");
  if (box) box.textContent = `Error: ${err instanceof Error ? err.message : String(err)}`;
  console.error(err);
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
