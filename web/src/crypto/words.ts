// The 256-word list of verification phrases, shared with the Go peer.
import text from "../../../internal/handshake/words.txt";

export const words: readonly string[] = text.split(/\s+/).filter((w) => w !== "");
