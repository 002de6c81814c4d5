// Strips the agent's TypeScript (and the @trellis/api code it imports) to
// plain JavaScript in dist/, with Node's own type stripper. Running the
// stripped output instead of the .ts sources saves the memory of the
// in-process type stripper (tens of MB of WASM heap that never shrinks), which
// matters for a DaemonSet on every node. Behaviour is identical: stripping
// only removes type syntax.
//
//   node packages/node-agent/scripts/build.ts   →   node packages/node-agent/dist/agent/cli.js ...

import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire, stripTypeScriptTypes } from "node:module";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const agentRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const apiRoot = join(agentRoot, "..", "api");
const dist = join(agentRoot, "dist");

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== "testing") out.push(...sources(p));
    } else if (name.endsWith(".ts") && !name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

function rel(fromFile: string, target: string): string {
  const r = relative(dirname(fromFile), target).split(sep).join("/");
  return r.startsWith(".") ? r : `./${r}`;
}

// Every entry of @trellis/api's export map ("." and subpaths such as "./cni") → its stripped
// file. A subpath left unmapped would load the api's .ts source at run time and with it the
// type stripper this build exists to avoid.
const apiExports = new Map(
  Object.entries(
    (JSON.parse(readFileSync(join(apiRoot, "package.json"), "utf8")) as { exports: Record<string, string> })
      .exports,
  ).map(([sub, file]) => [
    join("@trellis/api", sub).replace(/\/\.$/, ""),
    join(dist, "api", relative("src", file)).replace(/\.ts$/, ".js"),
  ]),
);

const IMPORT = /(\bfrom\s*|\bimport\s*\(?\s*)(["'])([^"']+)\2/g;

function build(srcRoot: string, outRoot: string, packageRoot: string, rewriteBare: boolean): number {
  const requireFrom = createRequire(join(packageRoot, "package.json"));
  let n = 0;
  for (const file of sources(srcRoot)) {
    const out = join(outRoot, relative(srcRoot, file)).replace(/\.ts$/, ".js");
    let code = stripTypeScriptTypes(readFileSync(file, "utf8"), { mode: "strip" });
    code = code.replace(IMPORT, (all, lead: string, q: string, spec: string) => {
      if (spec.startsWith(".")) return `${lead}${q}${spec.replace(/\.ts$/, ".js")}${q}`;
      const api = apiExports.get(spec);
      if (api !== undefined) return `${lead}${q}${rel(out, api)}${q}`;
      // The api's own dependencies live beside the api package, not the agent: point at them.
      if (rewriteBare && !spec.startsWith("node:"))
        return `${lead}${q}${rel(out, requireFrom.resolve(spec))}${q}`;
      return all;
    });
    const leftover = /\bfrom\s*["'](@trellis\/[^"']*|[^"']*\.ts)["']/.exec(code);
    if (leftover !== null)
      throw new Error(
        `${relative(agentRoot, file)}: import "${leftover[1]}" would load TypeScript at run time; map it in scripts/build.ts`,
      );
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, code);
    n++;
  }
  return n;
}

rmSync(dist, { recursive: true, force: true });
const a = build(join(apiRoot, "src"), join(dist, "api"), apiRoot, true);
const b = build(join(agentRoot, "src"), join(dist, "agent"), agentRoot, false);
process.stdout.write(`stripped ${a + b} files into ${relative(process.cwd(), dist) || dist}\n`);
