#!/usr/bin/env node
// trellis: the user's command line. `trellis tables` shows what the controller
// compiled for each node, in the same readable form as the golden files;
// `trellis explain` which route, rule and backends would serve one request;
// `trellis status` each node's table version and last NACK; `trellis backends`
// the per-backend traffic the agents report. All ask the controller's admin
// endpoint (--controller); status and check default to every replica through
// the API server instead, since each replica knows only its own agents.
import { Command, Option } from "commander";
import type { AgentStatusRow } from "../distribute/agent-status.ts";
import type { BackendStatsReport, LatencyBound } from "../distribute/backend-stats-window.ts";
import { kubeErrorMessage, readAgentRows } from "./agent-rows.ts";
import { registerCanaryCommands } from "./canary.ts";
import { registerCheckCommand } from "./check-command.ts";

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
    await show(
      o.controller,
      node ? `/debug/tables/${encodeURIComponent(node)}?format=${o.output}` : "/debug/tables",
    );
  });

/** Prints what the controller's admin endpoint answers; errors go to stderr with exit code 1. */
async function show(controller: string, path: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(new URL(path, controller), { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    process.stderr.write(
      `cannot reach the controller at ${controller} (${err instanceof Error ? err.message : String(err)}); set --controller or TRELLIS_CONTROLLER\n`,
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
}

program
  .command("explain")
  .description("show which route, rule and backends would serve one request from a pod, and why")
  .requiredOption("--from <namespace/pod>", "the client pod")
  .requiredOption(
    "--to <service:port>",
    "<namespace>/<service>:<port>, <service>.<namespace>:<port> or <service>:<port> (the client's namespace)",
  )
  .option("--path <path>", "HTTP path, query string allowed (default /)")
  .option("--method <method>", "HTTP method (default GET)")
  .option(
    "--header <name=value>",
    "request header; repeat for more",
    (v: string, all: string[]) => [...all, v],
    [],
  )
  .option("--grpc-method <service/method>", "a gRPC call, e.g. ColorService/Center")
  .addOption(
    new Option("--controller <url>", "controller admin URL")
      .env("TRELLIS_CONTROLLER")
      .default("http://127.0.0.1:9090"),
  )
  .addOption(new Option("-o, --output <format>", "yaml or json").choices(["yaml", "json"]).default("yaml"))
  .action(
    async (o: {
      from: string;
      to: string;
      path?: string;
      method?: string;
      header: string[];
      grpcMethod?: string;
      controller: string;
      output: string;
    }) => {
      const q = new URLSearchParams({ from: o.from, to: o.to, format: o.output });
      if (o.path) q.set("path", o.path);
      if (o.method) q.set("method", o.method);
      if (o.grpcMethod) q.set("grpc", o.grpcMethod);
      for (const h of o.header) q.append("header", h);
      await show(o.controller, `/debug/explain?${q}`);
    },
  );

/** A controller admin page as JSON; undefined (exit code 1, message on stderr) when it cannot be read. */
async function readJson<T>(controller: string, path: string, what: string): Promise<T | undefined> {
  const res = await fetch(new URL(path, controller), { signal: AbortSignal.timeout(5000) }).catch(
    (err: unknown) => err,
  );
  if (!(res instanceof Response) || !res.ok) {
    process.stderr.write(`cannot read ${what} from ${controller}; set --controller or TRELLIS_CONTROLLER\n`);
    process.exitCode = 1;
    return undefined;
  }
  return (await res.json()) as T;
}

program
  .command("status")
  .description(
    "per node: the table version the controller wants, what the agent applied, lag and last NACK (from every controller replica)",
  )
  .option("-n, --namespace <ns>", "namespace Trellis is installed in", "trellis-system")
  .addOption(
    new Option(
      "--controller <url>",
      "one controller's admin URL (default: every replica through the API server's pod proxy; one replica knows only the agents connected to it)",
    ).env("TRELLIS_CONTROLLER"),
  )
  .addOption(new Option("--kubeconfig <path>", "kubeconfig file (default: as kubectl finds it)"))
  .addOption(new Option("-o, --output <format>", "table or json").choices(["table", "json"]).default("table"))
  .action(async (o: { namespace: string; controller?: string; kubeconfig?: string; output: string }) => {
    let rows: AgentStatusRow[];
    try {
      rows = await readAgentRows(o);
    } catch (err) {
      process.stderr.write(
        `cannot read agent status (${kubeErrorMessage(err)}); check KUBECONFIG / --kubeconfig, or set --controller or TRELLIS_CONTROLLER\n`,
      );
      process.exitCode = 1;
      return;
    }
    if (o.output === "json") process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else process.stdout.write(`${formatStatus(rows)}\n`);
    // Non-zero when any node is not serving the desired table, so scripts can wait on it.
    if (rows.some((r) => r.desired !== r.applied)) process.exitCode = 3;
  });

function formatStatus(rows: readonly AgentStatusRow[]): string {
  const lines = [["NODE", "DESIRED", "APPLIED", "AGENT", "LAG", "LAST NACK"]];
  for (const r of rows) {
    lines.push([
      r.node,
      r.desired,
      r.applied,
      r.connected ? `connected (${r.pod})` : "disconnected",
      r.lagMs ? `${(r.lagMs / 1000).toFixed(1)}s` : "-",
      r.lastNack
        ? `${r.lastNack.version}: ${r.lastNack.reason} (${Math.round(r.lastNack.ageMs / 1000)}s ago)`
        : "-",
    ]);
  }
  return formatTable(lines);
}

program
  .command("backends")
  .description(
    "per backend: requests, failures and latency over the last minute, summed from every agent's reports",
  )
  .addOption(
    new Option("--controller <url>", "controller admin URL")
      .env("TRELLIS_CONTROLLER")
      .default("http://127.0.0.1:9090"),
  )
  .addOption(new Option("-o, --output <format>", "table or json").choices(["table", "json"]).default("table"))
  .action(async (o: { controller: string; output: string }) => {
    if (o.output === "json") return show(o.controller, "/debug/backends");
    const report = await readJson<BackendStatsReport>(o.controller, "/debug/backends", "backend stats");
    if (report === undefined) return;
    const latency = (b: LatencyBound) => (b === null ? "-" : b === "+Inf" ? "slower" : `≤${b}ms`);
    const lines = [["BACKEND", "REQUESTS", "FAILURES", "ERROR RATE", "P50", "P99"]];
    for (const b of report.backends) {
      lines.push([
        b.backendId,
        String(b.requests),
        String(b.failures),
        `${(b.errorRate * 100).toFixed(1)}%`,
        latency(b.p50Ms),
        latency(b.p99Ms),
      ]);
    }
    process.stdout.write(`${formatTable(lines)}\n`);
    process.stdout.write(`(last ${Math.round(report.windowMs / 1000)}s of agent reports)\n`);
  });

function formatTable(lines: string[][]): string {
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines
    .map((l) =>
      l
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

registerCheckCommand(program);
registerCanaryCommands(program);

await program.parseAsync();
