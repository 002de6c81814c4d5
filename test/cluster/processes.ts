// Daemons of the cluster-in-a-box. Every process the box starts carries
// TRELLIS_BOX in its environment (the node simulator passes it on to pod
// processes too), so teardown finds all of them by scanning /proc — even
// after a crash left no record of their pids.
import { spawn } from "node:child_process";
import { openSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

export const BOX_ENV = "TRELLIS_BOX";

export interface Daemon {
  name: string;
  pid: number;
  log: string;
}

export function startDaemon(
  name: string,
  command: string,
  args: string[],
  opts: { logDir: string; boxId: string; env?: NodeJS.ProcessEnv; cwd?: string },
): Daemon {
  const log = path.join(opts.logDir, `${name}.log`);
  const fd = openSync(log, "a");
  const child = spawn(command, args, {
    detached: true,
    stdio: ["ignore", fd, fd],
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env, [BOX_ENV]: opts.boxId },
  });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command}); see ${log}`);
  child.unref();
  return { name, pid: child.pid, log };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of every process carrying TRELLIS_BOX, whatever box id. */
export function boxProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, "latin1");
    } catch {
      continue;
    }
    if (environ.split("\0").some((kv) => kv.startsWith(`${BOX_ENV}=`))) pids.push(pid);
  }
  return pids;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function stopPids(pids: number[], graceMs: number): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already exited
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(isAlive)) await sleep(100);
  for (const pid of pids.filter(isAlive)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // exited between the check and the kill
    }
  }
  const killDeadline = Date.now() + 5000;
  while (Date.now() < killDeadline && pids.some(isAlive)) await sleep(50);
}
