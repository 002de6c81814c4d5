// `trellis-cni install|uninstall ...`: the same executable the runtime calls
// as a plugin also installs itself, so a node needs nothing else.

import { parseArgs } from "node:util";
import { InstallError, install, uninstall } from "./installer.ts";
import { readSettings, type ShimSettings } from "./net-conf.ts";

export const USAGE = `usage:
  trellis-cni install --cni-bin-dir DIR --cni-net-dir DIR [--socket-path P] [--captured-namespaces-file F]
                      [--timeout-seconds S] [--uncaptured-timeout-seconds S] [--log-level L] [--log-file F]
                      [--source FILE]
  trellis-cni uninstall --cni-bin-dir DIR --cni-net-dir DIR [--cni-cache-dir DIR]
    (with --cni-cache-dir, e.g. /var/lib/cni/results, the binary stays while sandboxes set up through it remain)
  (run without arguments, with CNI_COMMAND set, it is the CNI plugin)
`;

const options = {
  "cni-bin-dir": { type: "string" },
  "cni-net-dir": { type: "string" },
  "cni-cache-dir": { type: "string" },
  "socket-path": { type: "string" },
  "captured-namespaces-file": { type: "string" },
  "timeout-seconds": { type: "string" },
  "uncaptured-timeout-seconds": { type: "string" },
  "log-level": { type: "string" },
  "log-file": { type: "string" },
  source: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** The running executable when it is the SEA; undefined when run from source. */
  selfExecutable: string | undefined;
}

function settingsFrom(v: Record<string, string | boolean | undefined>): ShimSettings | string {
  const given: Record<string, unknown> = {};
  const str = (k: string, key: keyof ShimSettings) => {
    if (typeof v[k] === "string") given[key] = v[k];
  };
  str("socket-path", "socketPath");
  str("captured-namespaces-file", "capturedNamespacesFile");
  str("log-level", "logLevel");
  str("log-file", "logFile");
  for (const [k, key] of [
    ["timeout-seconds", "timeoutSeconds"],
    ["uncaptured-timeout-seconds", "uncapturedTimeoutSeconds"],
  ] as const)
    if (typeof v[k] === "string") given[key] = Number(v[k]);
  // The plugin validates the same keys at every call; refusing them here keeps a bad value off the node.
  return readSettings(given);
}

/** Returns the process exit code. */
export function runInstallerCli(argv: string[], io: CliIo): number {
  const [sub, ...rest] = argv;
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: false }>>;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: false });
  } catch (e) {
    io.err(`trellis-cni: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help || (sub !== "install" && sub !== "uninstall")) {
    (v.help ? io.out : io.err)(USAGE);
    return v.help ? 0 : 2;
  }
  const binDir = v["cni-bin-dir"];
  const netDir = v["cni-net-dir"];
  if (binDir === undefined || netDir === undefined) {
    io.err(`trellis-cni ${sub}: --cni-bin-dir and --cni-net-dir are required\n${USAGE}`);
    return 2;
  }
  try {
    if (sub === "uninstall") {
      const cacheDir = v["cni-cache-dir"];
      const r = uninstall({
        cniBinDir: binDir,
        cniNetDir: netDir,
        ...(cacheDir ? { cniCacheDir: cacheDir } : {}),
      });
      io.out(`removed trellis-cni from ${r.configs.length === 0 ? "no config" : r.configs.join(", ")}`);
      if (r.sandboxesLeft > 0)
        io.out(
          `kept ${binDir}/trellis-cni: ${r.sandboxesLeft} pod sandbox(es) set up through it still need it for teardown; uninstall again once they are gone`,
        );
      else io.out(r.binaryRemoved ? `removed ${binDir}/trellis-cni` : `no ${binDir}/trellis-cni to remove`);
      return 0;
    }
    const settings = settingsFrom(v);
    if (typeof settings === "string") {
      io.err(`trellis-cni install: ${settings}`);
      return 2;
    }
    const source = v.source ?? io.selfExecutable;
    if (source === undefined) {
      io.err("trellis-cni install: running from source, so --source FILE (the built executable) is required");
      return 2;
    }
    const r = install({ cniBinDir: binDir, cniNetDir: netDir, source, settings });
    io.out(`installed ${r.binary}`);
    if (r.convertedFrom !== undefined) io.out(`converted ${r.convertedFrom} into ${r.config}`);
    io.out(r.configChanged ? `added trellis-cni to ${r.config}` : `${r.config} already up to date`);
    return 0;
  } catch (e) {
    if (e instanceof InstallError) {
      io.err(`trellis-cni ${sub}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
