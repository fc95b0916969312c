// How a page tells its peer it is going after a cancel (PROTOCOL.md §4.6,
// §2.5): both flows do the same.
import type { Link } from "../net/link";
import type { Session } from "../net/session";
import { encodeControl } from "../protocol/frames";
import type { FerryError } from "./errors";
import { until } from "./timing";

// leave tells the peer we are going after a cancel: over the data channel
// when it is up (and then waits a little for the peer's goodbye, so its
// report reaches the server before we close), else by asking the server to
// end the pairing. ours is the error our own cancel made (only then is a
// cancel sent and a goodbye awaited); peerBye resolves on the peer's bye.
export async function leave(session: Session, link: Link | null, err: FerryError, ours: FerryError | null, peerBye: Promise<void>): Promise<void> {
  if (err.outcome !== "canceled" || err.code === 4011) return;
  const dc = link?.dc;
  if (dc?.readyState === "open") {
    if (err === ours) dc.send(encodeControl({ t: "cancel", reason: "canceled" }) as Uint8Array<ArrayBuffer>);
    void session.signal({ t: "bye", reason: "canceled" });
    if (err === ours) await until(peerBye, 2000);
  } else if (err === ours) {
    void session.signal({ t: "bye", reason: "canceled" });
    session.send({ type: "abort", reason: "canceled" });
  }
}
