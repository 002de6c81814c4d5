// CNI network-list execution with libcni semantics (CNI spec 1.0), pure: the
// plugin invocation is injected (see cni-runtime.ts for the real one).
//
// What a container runtime does, and so do we:
// - ADD runs the plugins in order; each gets the list's `name` and
//   `cniVersion` injected, the previous plugin's result as `prevResult`, and a
//   `runtimeConfig` holding those capability args the plugin declares in
//   `capabilities`. The last result is the network's result and is cached.
// - DEL runs the plugins in reverse order, each with the cached result as
//   `prevResult` (when there is one), stopping at the first error.
// - CHECK runs them in order with the cached result as `prevResult`
//   (skipped when the list sets disableCheck).
import type { Container, Pod } from "./k8s-types.ts";

export type CniPluginConf = {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
};

export type CniConfList = {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: CniPluginConf[];
  [key: string]: unknown;
};

export type CniResult = {
  cniVersion?: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
  dns?: unknown;
  [key: string]: unknown;
};

export type CniCommand = "ADD" | "DEL" | "CHECK";

export type RuntimeConf = {
  containerId: string;
  /** Path of the pod's network namespace, e.g. /run/netns/tbx-n1-0a1b2c3d. */
  netns: string;
  ifName: string;
  /** CNI_ARGS, in order. */
  args: [string, string][];
  /** Offered to plugins whose `capabilities` ask for them, as runtimeConfig. */
  capabilityArgs: Record<string, unknown>;
};

export type PluginInvocation = {
  command: CniCommand;
  plugin: CniPluginConf;
  /** Environment for the plugin process (CNI_* only; the invoker adds PATH). */
  env: Record<string, string>;
  /** The network configuration the plugin reads on stdin. */
  stdin: string;
};

/** Runs one plugin; resolves with its parsed stdout (ADD) or undefined, throws CniPluginError. */
export type PluginInvoker = (inv: PluginInvocation) => Promise<CniResult | undefined>;

export class CniPluginError extends Error {
  readonly pluginType: string;
  readonly command: CniCommand;
  readonly code: number;
  readonly details: string;
  constructor(pluginType: string, command: CniCommand, code: number, msg: string, details = "") {
    super(
      `plugin type="${pluginType}" failed (${command.toLowerCase()}): ${msg}${details ? `: ${details}` : ""}`,
    );
    this.name = "CniPluginError";
    this.pluginType = pluginType;
    this.command = command;
    this.code = code;
    this.details = details;
  }
}

/** Parses a .conflist, or a single-plugin .conf (turned into a one-plugin list, as libcni does). */
export function parseNetworkConfig(text: string, fileName: string): CniConfList {
  const raw = JSON.parse(text) as Record<string, unknown>;
  if (fileName.endsWith(".conflist")) {
    if (typeof raw.name !== "string" || !Array.isArray(raw.plugins) || raw.plugins.length === 0) {
      throw new Error(`${fileName}: a conflist needs a name and at least one plugin`);
    }
    for (const p of raw.plugins as unknown[]) {
      if (typeof p !== "object" || p === null || typeof (p as { type?: unknown }).type !== "string") {
        throw new Error(`${fileName}: every plugin needs a type`);
      }
    }
    return { ...raw, cniVersion: String(raw.cniVersion ?? "0.1.0") } as CniConfList;
  }
  if (typeof raw.type !== "string" || typeof raw.name !== "string") {
    throw new Error(`${fileName}: a conf needs a name and a type`);
  }
  return {
    cniVersion: String(raw.cniVersion ?? "0.1.0"),
    name: raw.name,
    plugins: [raw as CniPluginConf],
  };
}

/** semver-ish comparison of CNI versions ("0.4.0" < "1.0.0"). */
export function cniVersionAtLeast(version: string, min: string): boolean {
  const a = version.split(".").map((n) => Number.parseInt(n, 10) || 0);
  const b = min.split(".").map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < 3; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}

export function pluginStdin(
  list: CniConfList,
  plugin: CniPluginConf,
  prevResult: CniResult | undefined,
  rt: RuntimeConf,
): string {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  if (prevResult !== undefined) conf.prevResult = prevResult;
  const runtimeConfig: Record<string, unknown> = {};
  for (const [capability, supported] of Object.entries(plugin.capabilities ?? {})) {
    if (supported && capability in rt.capabilityArgs)
      runtimeConfig[capability] = rt.capabilityArgs[capability];
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  return JSON.stringify(conf);
}

export function pluginEnv(command: CniCommand, rt: RuntimeConf, cniPath: string): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: rt.containerId,
    CNI_NETNS: rt.netns,
    CNI_IFNAME: rt.ifName,
    CNI_ARGS: rt.args.map(([k, v]) => `${k}=${v}`).join(";"),
    CNI_PATH: cniPath,
  };
}

export class CniAddError extends Error {
  /** How many plugins were invoked, the failing one included. */
  readonly invoked: number;
  override readonly cause: unknown;
  constructor(invoked: number, cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = "CniAddError";
    this.invoked = invoked;
    this.cause = cause;
  }
}

export async function addNetworkList(
  list: CniConfList,
  rt: RuntimeConf,
  cniPath: string,
  invoke: PluginInvoker,
): Promise<CniResult> {
  let prev: CniResult | undefined;
  for (const [i, plugin] of list.plugins.entries()) {
    try {
      const result = await invoke({
        command: "ADD",
        plugin,
        env: pluginEnv("ADD", rt, cniPath),
        stdin: pluginStdin(list, plugin, prev, rt),
      });
      if (result === undefined)
        throw new CniPluginError(plugin.type, "ADD", 999, "plugin returned no result");
      prev = result;
    } catch (err) {
      throw new CniAddError(i + 1, err);
    }
  }
  return prev ?? {};
}

export async function delNetworkList(
  list: CniConfList,
  rt: RuntimeConf,
  cachedResult: CniResult | undefined,
  cniPath: string,
  invoke: PluginInvoker,
): Promise<void> {
  const prev = cniVersionAtLeast(list.cniVersion, "0.4.0") ? cachedResult : undefined;
  for (const plugin of [...list.plugins].reverse()) {
    await invoke({
      command: "DEL",
      plugin,
      env: pluginEnv("DEL", rt, cniPath),
      stdin: pluginStdin(list, plugin, prev, rt),
    });
  }
}

export async function checkNetworkList(
  list: CniConfList,
  rt: RuntimeConf,
  cachedResult: CniResult | undefined,
  cniPath: string,
  invoke: PluginInvoker,
): Promise<void> {
  if (list.disableCheck) return;
  if (!cniVersionAtLeast(list.cniVersion, "0.4.0")) {
    throw new Error(`configuration version "${list.cniVersion}" does not support the CHECK command`);
  }
  if (cachedResult === undefined) throw new Error("no cached result to CHECK against");
  for (const plugin of list.plugins) {
    await invoke({
      command: "CHECK",
      plugin,
      env: pluginEnv("CHECK", rt, cniPath),
      stdin: pluginStdin(list, plugin, cachedResult, rt),
    });
  }
}

/** CNI_ARGS as containerd's CRI plugin passes them for a pod sandbox. */
export function podCniArgs(pod: Pod, sandboxId: string): [string, string][] {
  return [
    ["IgnoreUnknown", "1"],
    ["K8S_POD_NAMESPACE", pod.metadata.namespace ?? ""],
    ["K8S_POD_NAME", pod.metadata.name ?? ""],
    ["K8S_POD_INFRA_CONTAINER_ID", sandboxId],
    ["K8S_POD_UID", pod.metadata.uid ?? ""],
  ];
}

export type PortMapping = { hostPort: number; containerPort: number; protocol: string; hostIP?: string };

function sandboxContainers(pod: Pod): Container[] {
  const sidecars = (pod.spec.initContainers ?? []).filter((c) => c.restartPolicy === "Always");
  return [...sidecars, ...pod.spec.containers];
}

/** runtimeConfig.portMappings for the portmap plugin: every container port with a hostPort. */
export function podPortMappings(pod: Pod): PortMapping[] {
  const out: PortMapping[] = [];
  for (const c of sandboxContainers(pod)) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort) continue;
      const m: PortMapping = {
        hostPort: p.hostPort,
        containerPort: p.containerPort,
        protocol: (p.protocol ?? "TCP").toLowerCase(),
      };
      if (p.hostIP) m.hostIP = p.hostIP;
      out.push(m);
    }
  }
  return out;
}

export function podCapabilityArgs(pod: Pod): Record<string, unknown> {
  return {
    portMappings: podPortMappings(pod),
    "io.kubernetes.cri.pod-annotations": pod.metadata.annotations ?? {},
  };
}

/** The pod IPs (without prefix length) a result assigns to the sandbox interface. */
export function resultIPs(result: CniResult): string[] {
  const sandboxIfaces = new Set((result.interfaces ?? []).flatMap((iface, i) => (iface.sandbox ? [i] : [])));
  return (result.ips ?? [])
    .filter((ip) => ip.interface === undefined || sandboxIfaces.size === 0 || sandboxIfaces.has(ip.interface))
    .map((ip) => ip.address.split("/")[0] ?? "")
    .filter((ip) => ip !== "");
}

export type BoxNetwork = {
  podCIDR: string;
  podGateway: string;
  clusterCIDR: string;
  serviceCIDR: string;
  underlayCIDR: string;
  ipamDataDir: string;
};

/**
 * The default network: a bridge with host-local IPAM, routes for the cluster's
 * CIDRs only (no default route: nothing may route off the machine), then
 * portmap for hostPorts.
 */
export function defaultConfList(net: BoxNetwork): CniConfList {
  return {
    cniVersion: "1.0.0",
    name: "trellis-box",
    plugins: [
      {
        type: "bridge",
        bridge: "cni0",
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: net.podCIDR, gateway: net.podGateway }]],
          dataDir: net.ipamDataDir,
          // gw spelled out: the bridge plugin's CHECK (v1.1.1) compares routes
          // including the gateway and fails for routes that leave it implicit
          routes: [net.clusterCIDR, net.serviceCIDR, net.underlayCIDR].map((dst) => ({
            dst,
            gw: net.podGateway,
          })),
        },
      },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
}

/** libcni's cache record (cniCacheV1), kept for DEL and CHECK. */
export type CniCacheRecord = {
  kind: "cniCacheV1";
  containerId: string;
  config: string;
  ifName: string;
  networkName: string;
  netns: string;
  cniArgs: [string, string][];
  capabilityArgs: Record<string, unknown>;
  result: CniResult;
};

export function cacheRecord(list: CniConfList, rt: RuntimeConf, result: CniResult): CniCacheRecord {
  return {
    kind: "cniCacheV1",
    containerId: rt.containerId,
    config: Buffer.from(JSON.stringify(list)).toString("base64"),
    ifName: rt.ifName,
    networkName: list.name,
    netns: rt.netns,
    cniArgs: rt.args,
    capabilityArgs: rt.capabilityArgs,
    result,
  };
}

export function cachedConfList(record: CniCacheRecord): CniConfList {
  return JSON.parse(Buffer.from(record.config, "base64").toString("utf8")) as CniConfList;
}
