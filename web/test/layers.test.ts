// The layers of web/src import only downwards: protocol/ and crypto/ at
// the bottom, then net/, then transfer/; nothing below ui/ imports it (the
// page's wording and views stay at the edge).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

const src = new URL("../src/", import.meta.url);

// forbidden lists, per folder, the folders its files must not import.
const forbidden: Record<string, string[]> = {
  protocol: ["net", "transfer", "sink", "ui"],
  crypto: ["net", "transfer", "sink", "ui"],
  net: ["transfer", "sink", "ui"],
  transfer: ["ui"],
};

test("web/src layers import only downwards", () => {
  const bad: string[] = [];
  for (const [dir, not] of Object.entries(forbidden)) {
    for (const f of readdirSync(new URL(dir, src)).filter((f) => f.endsWith(".ts"))) {
      const text = readFileSync(new URL(`${dir}/${f}`, src), "utf8");
      for (const m of text.matchAll(/^import[^;]*?from\s+"\.\.\/([a-z_]+)\//gm)) {
        if (not.includes(m[1]!)) bad.push(`${dir}/${f} imports ${m[1]}/`);
      }
    }
  }
  assert.deepEqual(bad, []);
});
