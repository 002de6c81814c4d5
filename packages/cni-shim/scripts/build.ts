// Builds the single executable dist/trellis-cni: esbuild bundles src/main.ts
// (and the bits of @trellis/api and pino it uses) into one CommonJS file, Node
// turns it into a SEA blob, postject injects the blob into a copy of this
// Node binary. Nodes then need no Node.js of their own.
//
//   node packages/cni-shim/scripts/build.ts [--force]
//
// Skipped when a stamp (hash of the inputs, the lockfile and the Node binary
// version) matches: tests call it in beforeAll. Output is renamed into place,
// so concurrent builds cannot leave a half-written executable.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const pkgRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = join(pkgRoot, "..", "..");
const dist = join(pkgRoot, "dist");
const exe = join(dist, "trellis-cni");
const stampFile = join(dist, "trellis-cni.stamp");
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

// postject's CLI in a child process: its ELF library prints harmless warnings straight to fd 2.
const postjectCli = createRequire(import.meta.url).resolve("postject/dist/cli.js");

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const p = join(dir, n);
      if (statSync(p).isDirectory()) return files(p);
      return n.endsWith(".test.ts") ? [] : [p];
    });
}

function stamp(): string {
  const h = createHash("sha256");
  const inputs = [
    ...files(join(pkgRoot, "src")),
    ...files(join(pkgRoot, "..", "api", "src")).filter((p) => !p.includes(`${join("src", "gen")}`)),
    join(pkgRoot, "scripts", "build.ts"),
    join(pkgRoot, "package.json"),
    join(repoRoot, "pnpm-lock.yaml"),
  ];
  for (const p of inputs) h.update(relative(repoRoot, p)).update("\0").update(readFileSync(p)).update("\0");
  h.update(process.version).update(process.execPath);
  return h.digest("hex");
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stdout}${r.stderr}`);
}

async function main(): Promise<void> {
  const started = performance.now();
  const want = stamp();
  const force = process.argv.includes("--force");
  if (!force && existsSync(exe) && existsSync(stampFile) && readFileSync(stampFile, "utf8") === want) {
    const ms = Math.round(performance.now() - started);
    process.stdout.write(`trellis-cni unchanged: ${relative(process.cwd(), exe) || exe} (${ms} ms)\n`);
    return;
  }
  mkdirSync(dist, { recursive: true });
  const work = join(dist, `.build-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work);
  try {
    const bundle = join(work, "trellis-cni.cjs");
    await build({
      entryPoints: [join(pkgRoot, "src", "main.ts")],
      bundle: true,
      platform: "node",
      format: "cjs",
      target: "node24",
      outfile: bundle,
      minify: true,
      // Names survive minification so pino's err serialiser and stack traces stay readable.
      keepNames: true,
      legalComments: "none",
      logLevel: "warning",
    });
    const seaConfig = join(work, "sea-config.json");
    const blob = join(work, "sea-prep.blob");
    writeFileSync(
      seaConfig,
      JSON.stringify({
        main: bundle,
        output: blob,
        disableExperimentalSEAWarning: true,
        // The plugin is exec'd for every pod sandbox: compiled code in the blob cuts its startup.
        useCodeCache: true,
        // A NODE_OPTIONS meant for something else on the node must not change how the plugin runs.
        execArgvExtension: "none",
      }),
    );
    run(process.execPath, ["--experimental-sea-config", seaConfig]);
    const out = join(work, "trellis-cni");
    copyFileSync(process.execPath, out);
    chmodSync(out, 0o755);
    run(process.execPath, [postjectCli, out, "NODE_SEA_BLOB", blob, "--sentinel-fuse", FUSE]);
    chmodSync(out, 0o755);
    renameSync(out, exe);
    writeFileSync(stampFile, want);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const ms = Math.round(performance.now() - started);
  const mb = (statSync(exe).size / 1024 / 1024).toFixed(1);
  process.stdout.write(`trellis-cni built: ${relative(process.cwd(), exe) || exe} (${mb} MiB, ${ms} ms)\n`);
}

await main();
