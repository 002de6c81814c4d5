// Entry point of the single executable: the CNI plugin when the runtime calls
// it (CNI_COMMAND in the environment), the installer when given a subcommand.

import { isSea } from "node:sea";
import { askAgent } from "./agent-client.ts";
import { readCapturedNamespaces } from "./captured-namespaces.ts";
import { ErrorCode } from "./cni-result.ts";
import { runInstallerCli } from "./installer-cli.ts";
import { createLog } from "./log.ts";
import { runPlugin } from "./plugin.ts";

async function readStdin(): Promise<string> {
  // A terminal means a human ran us (e.g. VERSION by hand): there is no config to wait for.
  if (process.stdin.isTTY) return "";
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function finish(stdout: string, exitCode: number): void {
  // Exit only once stdout is flushed: the runtime reads the result from it.
  if (stdout === "") process.exit(exitCode);
  process.stdout.write(stdout, () => process.exit(exitCode));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.length > 0) {
    const code = runInstallerCli(args, {
      out: (l) => process.stdout.write(`${l}\n`),
      err: (l) => process.stderr.write(`${l}\n`),
      selfExecutable: isSea() ? process.execPath : undefined,
    });
    process.exitCode = code;
    return;
  }
  const out = await runPlugin(process.env, await readStdin(), {
    askAgent,
    readCapturedNamespaces,
    makeLog: (s) => createLog(s.logLevel, s.logFile),
  });
  finish(out.stdout, out.exitCode);
}

main().catch((e: unknown) => {
  // Last resort: still answer in the spec's error shape so the runtime shows a reason.
  const msg = e instanceof Error ? e.message : String(e);
  finish(
    `${JSON.stringify({ cniVersion: "1.0.0", code: ErrorCode.internal, msg: `trellis-cni: ${msg}` })}\n`,
    1,
  );
});
