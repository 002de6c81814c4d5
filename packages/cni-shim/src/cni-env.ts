// The runtime passes the operation in environment variables (CNI spec
// "Parameters"); kubelet-driven runtimes add the pod's identity in CNI_ARGS.

export type CniCommandName = "ADD" | "DEL" | "CHECK" | "VERSION" | "GC" | "STATUS";

const COMMANDS: readonly string[] = ["ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS"];

export interface PodArgs {
  podNamespace: string;
  podName: string;
  podInfraContainerId: string;
  podUid: string;
}

export interface CniEnv {
  command: CniCommandName;
  containerId: string;
  netns: string;
  ifName: string;
  /** Where the runtime keeps plugins; read for the log only, this plugin delegates to none. */
  path: string;
  pod: PodArgs;
}

export type CniEnvResult = { ok: true; env: CniEnv } | { ok: false; msg: string };

/**
 * `K=V;K=V` pairs. A value may itself contain `=`; segments without one are
 * skipped rather than failing the pod, since none of the keys we need can be
 * spelled that way.
 */
export function parseCniArgs(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of raw.split(";")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

export function podArgs(raw: string): PodArgs {
  const a = parseCniArgs(raw);
  return {
    podNamespace: a.get("K8S_POD_NAMESPACE") ?? "",
    podName: a.get("K8S_POD_NAME") ?? "",
    podInfraContainerId: a.get("K8S_POD_INFRA_CONTAINER_ID") ?? "",
    podUid: a.get("K8S_POD_UID") ?? "",
  };
}

/** Variables the spec requires per command (CNI_PATH is not enforced: nothing here execs a delegate). */
function required(command: CniCommandName): string[] {
  switch (command) {
    case "ADD":
    case "CHECK":
      return ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"];
    case "DEL":
      return ["CNI_CONTAINERID", "CNI_IFNAME"];
    default:
      return [];
  }
}

export function readCniEnv(env: Readonly<Record<string, string | undefined>>): CniEnvResult {
  const command = env.CNI_COMMAND ?? "";
  if (command === "") return { ok: false, msg: "CNI_COMMAND is not set" };
  if (!COMMANDS.includes(command))
    return { ok: false, msg: `unknown CNI_COMMAND ${JSON.stringify(command)}` };
  const name = command as CniCommandName;
  const missing = required(name).filter((k) => (env[k] ?? "") === "");
  if (missing.length > 0) return { ok: false, msg: `${missing.join(", ")} required for ${name}` };
  return {
    ok: true,
    env: {
      command: name,
      containerId: env.CNI_CONTAINERID ?? "",
      netns: env.CNI_NETNS ?? "",
      ifName: env.CNI_IFNAME ?? "",
      path: env.CNI_PATH ?? "",
      pod: podArgs(env.CNI_ARGS ?? ""),
    },
  };
}
