// The player: the demo clip with the SDK's media tracker, and what the server decided
// about this playback session, in the server's own words.
import type { Likeview, Summary, ViewDecision, ViewTracker } from "../../sdk/src";
import {
  VIDEO_ID,
  client,
  plural,
  registerDemoContents,
  renderSession,
  showError,
  signIn,
} from "./common";

export interface PlayerProbe {
  likeview: Likeview;
  tracker: ViewTracker;
  decisions: ViewDecision[];
}

/** "counted: watched 30.2 s >= 30 s (rule VIDEO.default)" */
export function describe(d: ViewDecision): string {
  return `${d.counted ? "counted" : "not counted yet"}: ${d.reason} (rule ${d.rule})`;
}

async function main(): Promise<void> {
  const [session] = await Promise.all([signIn("alice"), registerDemoContents()]);
  renderSession(session);
  const lv = client(session);
  const video = document.getElementById("clip") as HTMLVideoElement;
  const decisionBox = document.getElementById("decision") as HTMLElement;
  const decisions: ViewDecision[] = [];
  const tracker = lv.trackViews(video, {
    contentId: VIDEO_ID,
    kind: "media",
    source: "DIRECT",
    onDecision: (d) => {
      decisions.push(d);
      decisionBox.textContent = describe(d);
      decisionBox.dataset.counted = String(d.counted);
    },
  });
  (document.getElementById("session") as HTMLElement).textContent = tracker.sessionId;

  const views = document.getElementById("views") as HTMLElement;
  lv.watchSummaries([VIDEO_ID], (s: Summary) => {
    views.dataset.views = String(s.views);
    views.textContent = `${plural(s.views, "counted view", "counted views")}, ${plural(
      s.uniqueViewers,
      "viewer",
      "viewers",
    )}`;
  });
  const probe: PlayerProbe = { likeview: lv, tracker, decisions };
  (window as unknown as { player: PlayerProbe }).player = probe;
  document.body.dataset.ready = "true";
}

main().catch(showError);
