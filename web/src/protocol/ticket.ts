// Tickets and links (PROTOCOL.md §1): "<id>.<secret>", the id chosen by the
// server, the 128-bit secret by the sender and kept in the URL fragment.
import { b64urlDecode, b64urlEncode } from "./b64";
import { idBytes, idLen, receivePath, secretBytes, secretLen } from "./constants_gen";

export { idBytes, idLen, receivePath, secretBytes, secretLen } from "./constants_gen";

export interface Ticket {
  id: string;
  secret: Uint8Array;
}

// LinkError.kind matches the "error" field of testdata/vectors/links.json.
export class LinkError extends Error {
  constructor(
    readonly kind: "link" | "id" | "secret",
    message: string,
  ) {
    super(message);
  }
}

export function validID(id: string): boolean {
  return id.length === idLen && b64urlDecode(id)?.length === idBytes;
}

export function parseTicket(text: string): Ticket {
  const s = text.trim();
  const dot = s.indexOf(".");
  if (dot < 0) {
    throw new LinkError("link", "This link is incomplete: the part after “#” is missing its secret. Ask the sender to copy the whole link.");
  }
  const id = s.slice(0, dot);
  const sec = s.slice(dot + 1);
  if (!validID(id)) {
    throw new LinkError("id", "This is not a valid ferry link (the link id is malformed). Check that it was copied exactly.");
  }
  const raw = sec.length === secretLen ? b64urlDecode(sec) : null;
  if (!raw || raw.length !== secretBytes) {
    throw new LinkError("secret", "The link was not copied completely: its secret is cut off or altered. Ask the sender to copy the whole link again.");
  }
  return { id, secret: raw };
}

export function ticketString(t: Ticket): string {
  return `${t.id}.${b64urlEncode(t.secret)}`;
}

// parseLink splits a full receive link into the server base and the ticket.
export function parseLink(link: string): { base: string; ticket: Ticket } {
  let u: URL;
  try {
    u = new URL(link.trim());
  } catch {
    throw new LinkError("link", "This is not a ferry link.");
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.host === "") {
    throw new LinkError("link", "This is not a ferry link.");
  }
  if (!u.pathname.endsWith(receivePath)) {
    throw new LinkError("link", "This is not a ferry receive link.");
  }
  const frag = u.hash.replace(/^#/, "");
  if (frag === "") {
    throw new LinkError("link", "This link is incomplete: the part after “#” is missing. Ask the sender to copy the whole link.");
  }
  const ticket = parseTicket(frag);
  const path = u.pathname.slice(0, -receivePath.length);
  return { base: `${u.protocol}//${u.host}${path}`, ticket };
}

export function newSecret(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(secretBytes));
}

// linkFor builds the link for a ticket on the server at base (origin plus
// optional path prefix, no trailing slash).
export function linkFor(base: string, t: Ticket): string {
  return `${base.replace(/\/$/, "")}${receivePath}#${ticketString(t)}`;
}
