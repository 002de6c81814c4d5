import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Builds the agent bundle (scripts/build.ts) into `dir` and returns its path. Each test gets
 * its own file, so test files running in parallel never run a bundle another one is rewriting.
 */
export function buildBundle(dir: string): string {
  const out = join(dir, "trellis-agent.js");
  const script = fileURLToPath(new URL("../../scripts/build.ts", import.meta.url));
  const r = spawnSync(process.execPath, ["--no-warnings", script, "--outfile", out], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`scripts/build.ts failed: ${r.stderr}`);
  return out;
}
