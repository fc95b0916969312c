// Who is using the send page and what the server allows (GET /api/v1/me):
// whether this server asks senders to sign in, who is signed in, and the
// size limit of one transfer. Receivers never need this.
import { $, h } from "./view";

export interface Me {
  signInRequired: boolean;
  signInUrl?: string;
  user?: string;
  maySend: boolean;
  maxBytes?: number; // the most one transfer may carry (absent: no limit)
}

// fetchMe asks the server; a server without the endpoint lets anyone send.
export async function fetchMe(): Promise<Me> {
  try {
    const r = await fetch("/api/v1/me", { credentials: "same-origin", cache: "no-store" });
    if (!r.ok) return { signInRequired: false, maySend: true };
    const m = (await r.json()) as Partial<Me>;
    return {
      signInRequired: m.signInRequired === true,
      maySend: m.maySend !== false,
      ...(typeof m.signInUrl === "string" && m.signInUrl.startsWith("/") ? { signInUrl: m.signInUrl } : {}),
      ...(typeof m.user === "string" && m.user ? { user: m.user } : {}),
      ...(typeof m.maxBytes === "number" && Number.isSafeInteger(m.maxBytes) && m.maxBytes > 0 ? { maxBytes: m.maxBytes } : {}),
    };
  } catch {
    return { signInRequired: false, maySend: true };
  }
}

// signInHref is where "Sign in" goes, coming back to the send page.
export function signInHref(me: Me | null): string {
  return `${me?.signInUrl ?? "/auth/login"}?next=/`;
}

// showAccount fills the header: who is signed in (with a sign-out link),
// or a sign-in link where this server offers one.
export function showAccount(me: Me): void {
  const nav = $("account");
  if (me.user) {
    nav.replaceChildren(
      h("span", { class: "who" }, h("span", { class: "muted wide-only" }, "Signed in as "), h("strong", { title: `Signed in as ${me.user}` }, me.user)),
      h("a", { href: "/auth/logout" }, "Sign out"),
    );
    nav.hidden = false;
  } else if (me.signInUrl) {
    nav.replaceChildren(h("a", { href: signInHref(me) }, "Sign in"));
    nav.hidden = false;
  } else {
    nav.hidden = true;
  }
  ($("signin-link") as HTMLAnchorElement).href = signInHref(me);
}
