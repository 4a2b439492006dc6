// The creator dashboard: analytics charts (uPlot), the creator's top contents,
// trending now and notifications, the last two live over WebSocket.
import { createClient } from "graphql-ws";
import uPlot from "uplot";
import type { Likeview } from "../../sdk/src";
import {
  CREATOR,
  POSTS,
  VIDEO_ID,
  client,
  el,
  registerDemoContents,
  renderSession,
  showError,
  signIn,
} from "./common";

const ANALYTICS = `query Dashboard($creator: ID!, $content: ID!, $range: TimeRange!, $g: Granularity!) {
  creatorAnalytics(creatorId: $creator, range: $range, granularity: $g, top: 10) {
    totals { views uniqueViewers likesAdded likesRemoved netLikes watchTimeMs engagementRate }
    series { start views likesAdded likesRemoved }
    topByViews { contentId views likesAdded }
  }
  contentAnalytics(contentId: $content, range: $range, granularity: $g) {
    totals { views uniqueViewers likesAdded watchTimeMs averageWatchMs }
    byPlatform { key views likesAdded }
    bySource { key views likesAdded }
    completion { sessions average histogram }
  }
}`;
const TRENDING = `query Trending { trending(window: HOUR, first: 10) { rank score content { contentId kind } } }`;
const NOTIFICATIONS = `query Notifications {
  notifications(first: 20) { edges { node { id kind text createdAt } } }
  unreadNotificationCount
}`;
const TRENDING_LIVE = `subscription { trendingUpdated(window: HOUR) { rank score content { contentId kind } } }`;
const NOTIFICATIONS_LIVE = `subscription { notificationReceived { id kind text createdAt } }`;

type Granularity = "MINUTE" | "HOUR" | "DAY";
interface Point {
  start: string;
  views: number;
  likesAdded: number;
  likesRemoved: number;
}
interface Breakdown {
  key: string;
  views: number;
  likesAdded: number;
}
interface Analytics {
  creatorAnalytics: {
    totals: Record<string, number | null>;
    series: Point[];
    topByViews: { contentId: string; views: number; likesAdded: number }[];
  };
  contentAnalytics: {
    totals: Record<string, number | null>;
    byPlatform: Breakdown[];
    bySource: Breakdown[];
    /** Null for kinds without a duration to complete (posts, products). */
    completion: { sessions: number; average: number | null; histogram: number[] } | null;
  };
}
interface TrendingItem {
  rank: number;
  score: number;
  content: { contentId: string; kind: string };
}
interface Note {
  id: string;
  kind: string;
  text: string;
  createdAt: string;
}

/** What each chart was drawn from, for the browser tests (and anyone curious). */
export interface DashboardProbe {
  charts: Record<string, { labels: string[]; series: Record<string, number[]> }>;
  analytics?: Analytics;
  trending: TrendingItem[];
  notifications: Note[];
  likeview: Likeview;
}

const RANGES: Record<string, { ms: number; granularity: Granularity }> = {
  hour: { ms: 3600_000, granularity: "MINUTE" },
  day: { ms: 24 * 3600_000, granularity: "HOUR" },
  month: { ms: 30 * 24 * 3600_000, granularity: "DAY" },
};

const charts = new Map<string, uPlot>();

/** A chart, a data table with the same numbers (screen readers), and the probe. */
function chart(
  probe: DashboardProbe,
  id: string,
  labels: string[],
  x: number[],
  series: Record<string, number[]>,
  opts: { bars?: boolean; time?: boolean },
): void {
  const box = document.getElementById(id) as HTMLElement;
  probe.charts[id] = { labels, series };
  box.dataset.chart = JSON.stringify({ labels, series });
  charts.get(id)?.destroy();
  const plotBox = box.querySelector(".plot") as HTMLElement;
  plotBox.replaceChildren();
  charts.delete(id);
  if (!labels.length) {
    // Nothing to draw (and an empty scale would give uPlot no range to tick).
    plotBox.append(el("p", {}, "No data in this range yet."));
    (box.querySelector("details table") as HTMLTableElement).replaceChildren();
    return;
  }
  const colors = ["#1f6feb", "#c2410c", "#15803d"];
  const names = Object.keys(series);
  const plot = new uPlot(
    {
      width: Math.max(280, Math.min(640, box.clientWidth || 640)),
      height: 220,
      scales: {
        x: opts.time
          ? { time: true }
          : { time: false, range: (): uPlot.Range.MinMax => [-0.5, labels.length - 0.5] },
      },
      axes: [
        opts.time
          ? {}
          : { values: (_u: uPlot, ticks: number[]) => ticks.map((t) => labels[t] ?? "") },
        {},
      ],
      series: [
        {},
        ...names.map((name, i) => ({
          label: name,
          stroke: colors[i % colors.length],
          fill: opts.bars ? `${colors[i % colors.length]}88` : undefined,
          width: 2,
          // Side by side: the first series left of each tick, the second right of it.
          paths: opts.bars
            ? uPlot.paths.bars?.({
                size: [names.length > 1 ? 0.35 : 0.6, 40],
                align: names.length > 1 ? (i === 0 ? -1 : 1) : 0,
              })
            : undefined,
          points: { show: !opts.bars },
        })),
      ],
    },
    [x, ...names.map((n) => series[n])],
    plotBox,
  );
  charts.set(id, plot);

  // (uPlot's legend is a table too, inside .plot.)
  const table = box.querySelector("details table") as HTMLTableElement;
  const head = el("tr");
  head.append(el("th", { scope: "col" }, opts.time ? "Time" : "Key"));
  for (const n of names) head.append(el("th", { scope: "col" }, n));
  const rows = labels.map((label, i) => {
    const tr = el("tr");
    tr.append(el("th", { scope: "row" }, label));
    for (const n of names) tr.append(el("td", {}, String(series[n][i])));
    return tr;
  });
  table.replaceChildren(el("thead"), el("tbody"));
  table.tHead?.append(head);
  table.tBodies[0].append(...rows);
}

function totals(id: string, values: Record<string, number | null>): void {
  const dl = document.getElementById(id) as HTMLElement;
  dl.replaceChildren();
  for (const [k, v] of Object.entries(values)) {
    const shown = v === null ? "–" : Number.isInteger(v) ? String(v) : v.toFixed(2);
    dl.append(el("dt", {}, k), el("dd", { "data-key": k }, shown));
  }
}

function renderTrending(probe: DashboardProbe, items: TrendingItem[]): void {
  probe.trending = items;
  const list = document.getElementById("trending") as HTMLElement;
  list.replaceChildren(
    ...(items.length
      ? items.map((t) =>
          el("li", {}, `${t.content.contentId} (${t.content.kind}), heat ${t.score.toFixed(2)}`),
        )
      : [el("li", {}, "Nothing is trending in the last hour.")]),
  );
}

function renderNotifications(probe: DashboardProbe): void {
  const list = document.getElementById("notifications") as HTMLElement;
  list.replaceChildren(
    ...(probe.notifications.length
      ? probe.notifications.map((n) =>
          el("li", { "data-id": n.id }, `${new Date(n.createdAt).toLocaleString()}: ${n.text}`),
        )
      : [el("li", {}, "No notifications yet.")]),
  );
}

async function load(lv: Likeview, probe: DashboardProbe, creator: string): Promise<void> {
  const content = (document.getElementById("content") as HTMLSelectElement).value;
  const range = RANGES[(document.getElementById("range") as HTMLSelectElement).value];
  const to = new Date();
  const from = new Date(to.getTime() - range.ms);
  const data = await lv.request<Analytics>(ANALYTICS, {
    creator,
    content,
    range: { from: from.toISOString(), to: to.toISOString() },
    g: range.granularity,
  });
  probe.analytics = data;
  const c = data.creatorAnalytics;
  totals("creator-totals", c.totals);
  const starts = c.series.map((p) => Date.parse(p.start) / 1000);
  chart(
    probe,
    "chart-series",
    c.series.map((p) => p.start),
    starts,
    {
      views: c.series.map((p) => p.views),
      likesAdded: c.series.map((p) => p.likesAdded),
    },
    { time: true },
  );
  const a = data.contentAnalytics;
  totals("content-totals", a.totals);
  const histogram = a.completion?.histogram ?? [];
  const bins = histogram.map((_, i) => `${i * 10}–${i * 10 + 10}%`);
  chart(
    probe,
    "chart-completion",
    bins,
    bins.map((_, i) => i),
    { sessions: histogram },
    { bars: true },
  );
  for (const [id, rows] of [
    ["chart-platform", a.byPlatform],
    ["chart-source", a.bySource],
  ] as const) {
    chart(
      probe,
      id,
      rows.map((r) => r.key),
      rows.map((_, i) => i),
      { views: rows.map((r) => r.views), likesAdded: rows.map((r) => r.likesAdded) },
      { bars: true },
    );
  }
  const top = document.getElementById("top") as HTMLElement;
  top.replaceChildren(
    ...c.topByViews.map((t) =>
      el("li", {}, `${t.contentId}: ${t.views} views, ${t.likesAdded} likes added`),
    ),
  );
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded ?? "0") + 1);
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const [session] = await Promise.all([signIn(CREATOR), registerDemoContents()]);
  renderSession(session);
  const lv = client(session);
  const probe: DashboardProbe = { charts: {}, trending: [], notifications: [], likeview: lv };
  (window as unknown as { dashboard: DashboardProbe }).dashboard = probe;
  const creator = session.userId ?? CREATOR;

  const select = document.getElementById("content") as HTMLSelectElement;
  const ids = [VIDEO_ID, ...POSTS.map((p) => p.id)];
  const asked = params.get("content");
  if (asked && !ids.includes(asked)) ids.unshift(asked);
  select.replaceChildren(...ids.map((id) => el("option", { value: id }, id)));
  select.value = asked ?? VIDEO_ID;
  const refresh = () => load(lv, probe, creator).catch(showError);
  select.addEventListener("change", refresh);
  (document.getElementById("range") as HTMLSelectElement).addEventListener("change", refresh);
  (document.getElementById("refresh") as HTMLButtonElement).addEventListener("click", refresh);

  const unread = document.getElementById("unread") as HTMLElement;
  // The list as stored; also after each (re)connect, since the live feed has none of
  // what was stored while the socket was down.
  const readNotifications = async (): Promise<void> => {
    if (!session.token) return;
    const notes = await lv.request<{
      notifications: { edges: { node: Note }[] };
      unreadNotificationCount: number;
    }>(NOTIFICATIONS);
    const stored = notes.notifications.edges.map((e) => e.node);
    const ids = new Set(stored.map((n) => n.id));
    probe.notifications = [...probe.notifications.filter((n) => !ids.has(n.id)), ...stored];
    renderNotifications(probe);
    unread.textContent = String(notes.unreadNotificationCount);
  };
  const [, trending] = await Promise.all([
    load(lv, probe, creator),
    lv.request<{ trending: TrendingItem[] }>(TRENDING),
    readNotifications(),
  ]);
  renderTrending(probe, trending.trending);
  if (!session.token) renderNotifications(probe);

  // The SDK's socket serves its own subscriptions; these two are the dashboard's.
  const ws = createClient({
    url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
    connectionParams: () => (session.token ? { authorization: `Bearer ${session.token}` } : {}),
    retryAttempts: Infinity,
    shouldRetry: () => true,
    on: {
      connected: (_socket, _payload, wasRetry) => {
        document.body.dataset.live = "true";
        if (wasRetry) readNotifications().catch(showError);
      },
      closed: () => {
        document.body.dataset.live = "false";
      },
    },
  });
  ws.subscribe<{ trendingUpdated: TrendingItem[] }>(
    { query: TRENDING_LIVE },
    {
      next: (msg) => msg.data && renderTrending(probe, msg.data.trendingUpdated),
      error: showError,
      complete: () => undefined,
    },
  );
  if (session.token) {
    ws.subscribe<{ notificationReceived: Note }>(
      { query: NOTIFICATIONS_LIVE },
      {
        next: (msg) => {
          if (!msg.data) return;
          const note = msg.data.notificationReceived;
          if (probe.notifications.some((n) => n.id === note.id)) return;
          probe.notifications = [note, ...probe.notifications];
          renderNotifications(probe);
          unread.textContent = String(Number(unread.textContent) + 1);
        },
        error: showError,
        complete: () => undefined,
      },
    );
  }
  document.body.dataset.ready = "true";
}

main().catch(showError);
