// Builds web/dist deterministically (CI rebuilds it and compares byte for
// byte), or with --tests the unit tests into test-dist/ for node --test.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const here = new URL(".", import.meta.url).pathname;
const common = {
  bundle: true,
  loader: { ".txt": "text" },
  target: ["es2022", "chrome105", "firefox110", "safari16"],
  logLevel: "warning",
  charset: "utf8",
};

if (process.argv.includes("--tests")) {
  const out = join(here, "test-dist");
  rmSync(out, { recursive: true, force: true });
  const tests = readdirSync(join(here, "test")).filter((f) => f.endsWith(".test.ts"));
  await esbuild.build({
    ...common,
    entryPoints: tests.map((f) => join(here, "test", f)),
    outdir: out,
    outExtension: { ".js": ".mjs" },
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "inline",
  });
} else {
  const out = join(here, "dist");
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out);
  await esbuild.build({
    ...common,
    entryPoints: {
      app: join(here, "src/app.ts"),
      worker: join(here, "src/worker.ts"),
      sw: join(here, "src/sw.ts"),
      style: join(here, "src/ui/style.css"),
    },
    outdir: out,
    entryNames: "[name]",
    format: "iife",
    minify: true,
    legalComments: "eof",
    sourcemap: false,
  });
  for (const f of readdirSync(join(here, "static"))) copyFileSync(join(here, "static", f), join(out, f));
}
