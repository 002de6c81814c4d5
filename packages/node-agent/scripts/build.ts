// Bundles the agent (its TypeScript, @trellis/api and the npm packages it uses) into one
// JavaScript file with esbuild. What runs on every node is then one module instead of a few
// hundred: no in-process type stripper (tens of MB of WASM heap that never shrinks), no module
// resolution at start, and V8 holds less source. Measured on the bench table at start: the
// .ts sources ≈ 108 MB RSS, per-file stripped JavaScript ≈ 74 MB, this bundle ≈ 66 MB
// (docs/agent.md, "Memory").
//
// Whitespace and syntax are minified; identifiers are not, so stack traces and profiles keep
// the source's names. (Renaming identifiers too made RSS 2 MB larger, not smaller, here.)
//
//   node packages/node-agent/scripts/build.ts   →   node packages/node-agent/dist/trellis-agent.js ...
//   node packages/node-agent/scripts/build.ts --outfile <path>   (tests build into their own directory)

import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const agentRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: { outfile: { type: "string", default: join(agentRoot, "dist", "trellis-agent.js") } },
});
const bundlePath = resolve(values.outfile as string);
const result = await build({
  entryPoints: [join(agentRoot, "src", "cli.ts")],
  outfile: bundlePath,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node24",
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: "linked",
  metafile: true,
  logLevel: "warning",
  // The bundled CommonJS packages (grpc-js, pino, prom-client, ...) call require() for Node's
  // builtins; an ES module has none of its own.
  banner: {
    js: "import { createRequire as __trellisRequire } from 'node:module'; const require = __trellisRequire(import.meta.url);",
  },
});
const inputs = Object.keys(result.metafile.inputs).length;
const bytes = result.metafile.outputs[relative(process.cwd(), bundlePath)]?.bytes ?? 0;
process.stdout.write(
  `bundled ${inputs} files into ${relative(process.cwd(), bundlePath)} (${Math.round(bytes / 1024)} KiB)\n`,
);
