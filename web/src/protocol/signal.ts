// Signaling messages between a client and the server (PROTOCOL.md §2) and
// the sealed peer-to-peer signals (§3.3).

import { close, featureStripes, forbidden, maxReportNames } from "./constants_gen";

export { close, forbidden, signalPath, subprotocol } from "./constants_gen";
export const agent = "ferry-web/0.1.0";
export const features = ["resume", featureStripes];

export interface IceServer {
  urls: string[] | string;
  username?: string;
  credential?: string;
}

export interface ServerMessage {
  type: string;
  id?: string;
  expires?: number;
  iceServers?: IceServer[];
  maxBytes?: number;
  auditNames?: boolean;
}

export type Role = "S" | "R";

export interface Signal {
  t: "info" | "sdp" | "cand" | "restart" | "bye";
  agent?: string;
  features?: string[];
  type?: "offer" | "answer";
  sdp?: string;
  candidate?: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  gen?: number;
  // sdp: stripe connection k of generation gen (PROTOCOL.md §3.4); absent
  // or 0 for the main one.
  stripe?: number;
  reason?: string;
}

// closeMessage is what a person is told when the server closes the
// signaling connection with code and reason (PROTOCOL.md §2.6).
export function closeMessage(code: number, reason = ""): string {
  switch (code) {
    case close.protocol:
    case close.tooLarge:
      return "Something went wrong between this page and the server. Reload the page and try again.";
    case close.version:
      return "This page is out of date. Reload it to get the current version.";
    case close.rateLimited:
      return "Too many attempts from your network. Wait a minute and try again.";
    case close.notFound:
      return "This link is wrong or was never valid (or the server restarted). Ask the sender for a new link.";
    case close.expired:
      return "This link has expired. Ask the sender for a new one.";
    case close.used:
      return "This link was already opened by someone. Links work only once: ask the sender for a new one.";
    case close.wrongKey:
      return "The link's secret is wrong, so the link has been closed for safety. Ask the sender for a new link.";
    case close.peerGone:
      return "The other side disconnected.";
    case close.forbidden:
      if (reason === forbidden.signIn) return "This server lets only signed-in people create links. Sign in and try again.";
      if (reason === forbidden.network) return "The server does not allow this from your network.";
      return "The server does not allow this from your network (or a sign-in is needed).";
    case close.timeout:
      return "Timed out waiting for the other side.";
    case close.canceled:
      return "The other side canceled the transfer.";
    case close.shutdown:
      return "The server is restarting. Try again in a moment.";
    case close.limit:
      return "A server limit for this transfer was reached. Start a new transfer.";
    case close.replaced:
      return "This transfer was taken over by another tab or device.";
  }
  return "The connection to the server was lost.";
}

// reportNames is the list of file names a report may carry when the
// operator records them: as many as fit in budget bytes of JSON, since
// a signaling message over 64 KiB would close the connection (4002).
export function reportNames(paths: string[], budget = maxReportNames): string[] {
  const enc = new TextEncoder();
  const out: string[] = [];
  let used = 0;
  for (const p of paths) {
    used += enc.encode(JSON.stringify(p)).length + 1;
    if (used > budget) break;
    out.push(p);
  }
  return out;
}
