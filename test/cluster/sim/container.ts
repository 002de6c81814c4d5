// One run of a container: a process spawned from launchArgv (launch.ts), its
// stdout/stderr appended to <stateDir>/pods/<ns>_<name>_<uid>/<container>.log,
// its exit observed, and a stop that behaves like a runtime's StopContainer:
// SIGTERM to the main process, SIGKILL to everything of the container after
// the grace period.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { constants } from "node:os";
import { dirname } from "node:path";
import { killMatching, signal } from "./processes.ts";

export type ExitInfo = {
  exitCode: number;
  signal?: number;
  finishedAt: Date;
};

export type ContainerRunSpec = {
  argv: readonly string[];
  env: Record<string, string>;
  logFile: string;
  boxId: string;
  node: string;
  podUid: string;
  containerName: string;
};

export class ContainerRun {
  readonly id: string;
  readonly pid: number;
  readonly startedAt: Date;
  readonly exited: Promise<ExitInfo>;
  readonly #spec: ContainerRunSpec;
  #exit: ExitInfo | undefined;

  private constructor(spec: ContainerRunSpec, pid: number, exited: Promise<ExitInfo>) {
    this.#spec = spec;
    this.id = randomBytes(16).toString("hex");
    this.pid = pid;
    this.startedAt = new Date();
    this.exited = exited.then((e) => {
      this.#exit = e;
      return e;
    });
  }

  get exit(): ExitInfo | undefined {
    return this.#exit;
  }

  /** Spawns the process; rejects when it cannot be spawned at all. */
  static async start(spec: ContainerRunSpec): Promise<ContainerRun> {
    mkdirSync(dirname(spec.logFile), { recursive: true });
    const fd = openSync(spec.logFile, "a");
    try {
      const [cmd, ...args] = spec.argv;
      if (!cmd) throw new Error("empty argv");
      const child = spawn(cmd, args, { env: spec.env, stdio: ["ignore", fd, fd], detached: true });
      const exited = new Promise<ExitInfo>((resolve) => {
        child.on("exit", (code, sig) => {
          const signo = sig ? constants.signals[sig] : undefined;
          resolve({
            exitCode: code ?? (signo !== undefined ? 128 + signo : 255),
            ...(signo !== undefined ? { signal: signo } : {}),
            finishedAt: new Date(),
          });
        });
      });
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", reject);
      });
      if (child.pid === undefined) throw new Error("spawn gave no pid");
      return new ContainerRun(spec, child.pid, exited);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * SIGTERM the main process, wait up to graceMs, then SIGKILL every process
   * of this container (its process group and anything else carrying its
   * markers). Resolves with the exit of the main process.
   */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (this.#exit) {
      await this.killRest();
      return this.#exit;
    }
    signal(this.pid, "SIGTERM");
    const timedOut = Symbol("timeout");
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.exited,
      new Promise<typeof timedOut>((resolve) => {
        timer = setTimeout(() => resolve(timedOut), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (r === timedOut) signal(-this.pid, "SIGKILL");
    const exit = await this.exited;
    await this.killRest();
    return exit;
  }

  /**
   * Kills what is left of the container once its main process is gone (a
   * runtime's PID namespace would take them down with it).
   */
  async killRest(): Promise<void> {
    signal(-this.pid, "SIGKILL");
    const { boxId, node, podUid, containerName } = this.#spec;
    await killMatching(
      boxId,
      node,
      (env) => env.get("TRELLIS_POD_UID") === podUid && env.get("TRELLIS_CONTAINER") === containerName,
    );
  }
}
