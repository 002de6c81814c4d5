// Finding and killing pod processes by the environment markers every
// container process carries (TRELLIS_BOX, TRELLIS_NODE, TRELLIS_POD_UID,
// TRELLIS_CONTAINER). Without PID namespaces or cgroups this is how a
// container's whole process tree is found, also after a simulator crash.
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";

export type ProcInfo = { pid: number; env: Map<string, string> };

export function parseEnviron(raw: Buffer): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of raw.toString("utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

/** Processes of this box and node, with their environment. */
export async function boxProcesses(boxId: string, node: string): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  const entries = await readdir("/proc").catch(() => [] as string[]);
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    const raw = await readFile(`/proc/${e}/environ`).catch(() => undefined);
    if (!raw) continue;
    const env = parseEnviron(raw);
    if (env.get("TRELLIS_BOX") === boxId && env.get("TRELLIS_NODE") === node && env.has("TRELLIS_POD_UID")) {
      out.push({ pid, env });
    }
  }
  return out;
}

export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Whether the process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) S ...": the state follows the last ')'
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** SIGKILLs the matching processes of this box/node and waits (briefly) for them to go. */
export async function killMatching(
  boxId: string,
  node: string,
  match: (env: Map<string, string>) => boolean,
): Promise<number[]> {
  const victims = (await boxProcesses(boxId, node)).filter((p) => match(p.env)).map((p) => p.pid);
  for (const pid of victims) signal(pid, "SIGKILL");
  const deadline = Date.now() + 2000;
  while (victims.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return victims;
}
