// The I/O side of CNI: configuration directory, plugin lookup on CNI_PATH,
// invoking plugin binaries inside the node's network namespace, and the
// result cache (libcni keeps it in /var/lib/cni/results; we keep it under the
// node's state dir).
import { constants } from "node:fs";
import { access, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import {
  addNetworkList,
  type CniCacheRecord,
  type CniConfList,
  CniPluginError,
  type CniResult,
  cachedConfList,
  cacheRecord,
  checkNetworkList,
  defaultConfList,
  delNetworkList,
  type PluginInvocation,
  parseNetworkConfig,
  type RuntimeConf,
} from "./cni.ts";
import type { NodeConfig } from "./config.ts";
import { run } from "./exec.ts";
import { nodeHostPaths, resolveHostPath } from "./host-paths.ts";

export const DEFAULT_CONFLIST = "10-trellis-box.conflist";
const PLUGIN_TIMEOUT_MS = 60_000;
/** Bind-mounts $1 at /run/trellis in the private mount namespace `ip netns exec` made, then execs the plugin. */
const PLUGIN_LAUNCHER = 'mkdir -p /run/trellis && mount --bind "$1" /run/trellis && shift && exec "$@"';

export type CniPaths = {
  netDir: string;
  binDirs: string[];
  cacheDir: string;
  ipamDataDir: string;
};

export function cniPaths(cfg: NodeConfig): CniPaths {
  return {
    netDir: join(cfg.stateDir, "cni", "net.d"),
    binDirs: [join(cfg.stateDir, "cni", "bin"), "/usr/lib/cni"],
    cacheDir: join(cfg.stateDir, "cni", "cache"),
    ipamDataDir: join(cfg.stateDir, "cni", "ipam"),
  };
}

export class CniRuntime {
  readonly #cfg: NodeConfig;
  readonly #paths: CniPaths;
  readonly #log: Logger;

  constructor(cfg: NodeConfig, log: Logger) {
    this.#cfg = cfg;
    this.#paths = cniPaths(cfg);
    this.#log = log;
  }

  get paths(): CniPaths {
    return this.#paths;
  }

  get cniPath(): string {
    return this.#paths.binDirs.join(":");
  }

  /** Creates the default conflist when the directory holds none of ours. */
  async ensureDefaultConfig(): Promise<void> {
    await mkdir(this.#paths.netDir, { recursive: true });
    await mkdir(join(this.#paths.cacheDir, "results"), { recursive: true });
    await mkdir(this.#paths.ipamDataDir, { recursive: true });
    await mkdir(this.#paths.binDirs[0] ?? join(this.#cfg.stateDir, "cni", "bin"), { recursive: true });
    const file = join(this.#paths.netDir, DEFAULT_CONFLIST);
    try {
      await access(file);
    } catch {
      const list = defaultConfList({ ...this.#cfg, ipamDataDir: this.#paths.ipamDataDir });
      await writeFile(file, `${JSON.stringify(list, null, 2)}\n`);
      this.#log.info({ file }, "wrote default CNI configuration");
    }
  }

  /**
   * The network to use now: the first valid configuration in lexical order,
   * as containerd picks it. Read afresh for every ADD, because an installer
   * may have chained another plugin in meanwhile.
   */
  async loadNetwork(): Promise<CniConfList> {
    const files = (await readdir(this.#paths.netDir))
      .filter((f) => f.endsWith(".conflist") || f.endsWith(".conf") || f.endsWith(".json"))
      .sort();
    for (const f of files) {
      try {
        return parseNetworkConfig(await readFile(join(this.#paths.netDir, f), "utf8"), f);
      } catch (err) {
        this.#log.warn({ file: f, err: String(err) }, "skipping invalid CNI configuration");
      }
    }
    throw new Error(`no valid CNI configuration in ${this.#paths.netDir}`);
  }

  async findPlugin(type: string): Promise<string> {
    if (type.includes("/")) throw new Error(`invalid plugin type ${type}`);
    for (const dir of this.#paths.binDirs) {
      const candidate = join(dir, type);
      try {
        await access(candidate, constants.X_OK);
        return candidate;
      } catch {
        // keep looking
      }
    }
    throw new Error(`failed to find plugin "${type}" in path [${this.#paths.binDirs.join(" ")}]`);
  }

  /** Runs one plugin binary inside the node's network namespace. */
  readonly invoke = async (inv: PluginInvocation): Promise<CniResult | undefined> => {
    const binary = await this.findPlugin(inv.plugin.type);
    const started = Date.now();
    // The plugin sees this node's runtime directory at the host path (the
    // shim finds the agent's socket there); see host-paths.ts.
    const runDir = resolveHostPath(nodeHostPaths(this.#cfg.stateDir), "/run/trellis");
    await mkdir(runDir, { recursive: true });
    const r = await run(
      "ip",
      ["netns", "exec", this.#cfg.netns, "sh", "-c", PLUGIN_LAUNCHER, "sh", runDir, binary],
      {
        env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...inv.env },
        stdin: inv.stdin,
        timeoutMs: PLUGIN_TIMEOUT_MS,
      },
    );
    this.#log.debug(
      { plugin: inv.plugin.type, command: inv.command, code: r.code, ms: Date.now() - started },
      "cni plugin ran",
    );
    if (r.code !== 0) {
      let msg = (r.stderr || r.stdout).trim() || `exit code ${r.code}`;
      let code = r.code;
      let details = "";
      try {
        const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string };
        if (e.msg) {
          msg = e.msg;
          code = e.code ?? code;
          details = e.details ?? "";
        }
      } catch {
        // not a CNI error object
      }
      throw new CniPluginError(inv.plugin.type, inv.command, code, msg, details);
    }
    if (inv.command !== "ADD") return undefined;
    try {
      return JSON.parse(r.stdout) as CniResult;
    } catch {
      throw new CniPluginError(
        inv.plugin.type,
        inv.command,
        999,
        `unparsable result: ${r.stdout.slice(0, 200)}`,
      );
    }
  };

  #cacheFile(networkName: string, containerId: string, ifName: string): string {
    return join(this.#paths.cacheDir, "results", `${networkName}-${containerId}-${ifName}`);
  }

  async add(rt: RuntimeConf): Promise<{ list: CniConfList; result: CniResult }> {
    const list = await this.loadNetwork();
    const result = await addNetworkList(list, rt, this.cniPath, this.invoke);
    const record = cacheRecord(list, rt, result);
    await writeFile(this.#cacheFile(list.name, rt.containerId, rt.ifName), JSON.stringify(record));
    return { list, result };
  }

  /**
   * DEL with the configuration and result cached at ADD (libcni's
   * GetNetworkListCachedConfig), or the current configuration when nothing was
   * cached (e.g. after a failed ADD).
   */
  async del(rt: RuntimeConf): Promise<void> {
    const record = await this.readCache(rt.containerId, rt.ifName);
    const list = record ? cachedConfList(record) : await this.loadNetwork();
    await delNetworkList(list, rt, record?.result, this.cniPath, this.invoke);
    await rm(this.#cacheFile(list.name, rt.containerId, rt.ifName), { force: true });
  }

  async check(rt: RuntimeConf): Promise<void> {
    const record = await this.readCache(rt.containerId, rt.ifName);
    if (!record) throw new Error(`no cached CNI result for ${rt.containerId}`);
    await checkNetworkList(cachedConfList(record), rt, record.result, this.cniPath, this.invoke);
  }

  async readCache(containerId: string, ifName: string): Promise<CniCacheRecord | undefined> {
    const records = await this.listCache();
    return records.find((r) => r.containerId === containerId && r.ifName === ifName);
  }

  async listCache(): Promise<CniCacheRecord[]> {
    const dir = join(this.#paths.cacheDir, "results");
    const names = await readdir(dir).catch(() => [] as string[]);
    const out: CniCacheRecord[] = [];
    for (const n of names) {
      try {
        const rec = JSON.parse(await readFile(join(dir, n), "utf8")) as CniCacheRecord;
        if (rec.kind === "cniCacheV1") out.push(rec);
      } catch {
        // unreadable: ignore
      }
    }
    return out;
  }

  async dropCache(rec: CniCacheRecord): Promise<void> {
    await rm(this.#cacheFile(rec.networkName, rec.containerId, rec.ifName), { force: true });
  }

  /**
   * host-local reservations (`<dataDir>/<network>/<ip>`, content
   * "<containerId>\r\n<ifname>"). Returns ip → containerId.
   */
  async ipamReservations(): Promise<{ file: string; containerId: string }[]> {
    const out: { file: string; containerId: string }[] = [];
    const networks = await readdir(this.#paths.ipamDataDir).catch(() => [] as string[]);
    for (const net of networks) {
      const dir = join(this.#paths.ipamDataDir, net);
      const files = await readdir(dir).catch(() => [] as string[]);
      for (const f of files) {
        if (!/^[0-9a-f.:]+$/.test(f)) continue; // skip lock, last_reserved_ip.*
        const content = await readFile(join(dir, f), "utf8").catch(() => "");
        out.push({ file: join(dir, f), containerId: content.split(/\r?\n/)[0]?.trim() ?? "" });
      }
    }
    return out;
  }

  /** Last resort after a failed DEL: release the IPs host-local holds for a sandbox. */
  async releaseIPs(containerId: string): Promise<void> {
    for (const r of await this.ipamReservations()) {
      if (r.containerId === containerId) await rm(r.file, { force: true });
    }
  }
}
