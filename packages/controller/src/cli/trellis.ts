#!/usr/bin/env node
// trellis: the user's command line. `trellis tables` shows what the controller
// compiled for each node, in the same readable form as the golden files.
import { Command, Option } from "commander";

const program = new Command("trellis").description("Trellis service mesh command line");

program
  .command("tables")
  .description("list node tables (version and digest), or show one node's table")
  .argument("[node]", "node name; omit to list every node with its table version")
  .option("--node <node>", "node name (same as the argument)")
  .addOption(
    new Option("--controller <url>", "controller admin URL")
      .env("TRELLIS_CONTROLLER")
      .default("http://127.0.0.1:9090"),
  )
  .addOption(
    new Option("-o, --output <format>", "yaml (readable tree) or json (the NodeTable message)")
      .choices(["yaml", "json"])
      .default("yaml"),
  )
  .action(async (arg: string | undefined, o: { node?: string; controller: string; output: string }) => {
    const node = arg ?? o.node;
    const path = node ? `/debug/tables/${encodeURIComponent(node)}?format=${o.output}` : "/debug/tables";
    let res: Response;
    try {
      res = await fetch(new URL(path, o.controller), { signal: AbortSignal.timeout(5000) });
    } catch (err) {
      process.stderr.write(
        `cannot reach the controller at ${o.controller} (${err instanceof Error ? err.message : String(err)}); set --controller or TRELLIS_CONTROLLER\n`,
      );
      process.exitCode = 1;
      return;
    }
    const body = await res.text();
    if (!res.ok) {
      process.stderr.write(body);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(body);
  });

await program.parseAsync();
