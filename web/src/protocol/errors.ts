// Errors of the protocol layers: the close of a signaling connection (its
// code and reason), a lost connection generation, and what the peer
// reported over the data channel (PROTOCOL.md §2.6, §4.6). Every failure
// that reaches the page becomes a FerryError with a plain-language message;
// details go to the console only.

export type Outcome = "completed" | "failed" | "canceled";

export class FerryError extends Error {
  constructor(
    message: string,
    readonly outcome: Outcome = "failed",
    readonly code = 0, // signaling close code, if any
    readonly reason = "", // and the server's close reason
  ) {
    super(message);
  }
}

// ConnLost means the data channel or peer connection broke; the transfer
// can continue on a new connection generation.
export class ConnLost extends Error {}

export function canceledByPeer(): FerryError {
  return new FerryError("The other side canceled the transfer.", "canceled");
}

const peerErrors: Record<string, string> = {
  root_mismatch: "Verification failed: the received file does not match what was sent. Nothing unverified was kept; try again.",
  file_changed: "A file changed on the sender's disk while it was being sent. Try again once it is no longer being modified.",
  too_large: "The transfer is larger than allowed.",
  io: "The other side could not read or write a file.",
  protocol: "The two sides did not understand each other (protocol error). Make sure both use an up-to-date ferry.",
};

export function peerError(code: unknown): FerryError {
  const m = typeof code === "string" ? peerErrors[code] : undefined;
  return new FerryError(m ?? "The other side reported an error and stopped.");
}

export function protocolError(detail: string): FerryError {
  console.error("ferry: protocol error:", detail);
  return new FerryError(peerErrors.protocol!);
}
