// Container probes (readiness, liveness, startup), as kubelet runs them.
//
// httpGet/tcpSocket/grpc connect from the simulator, i.e. the root network
// namespace, which routes to every pod CIDR and to node underlay addresses
// (hostNetwork pods are probed on the node's underlay IP). exec runs the
// command inside the container's namespaces with nsenter.
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import { run } from "./exec.ts";
import type { ContainerPort, Probe } from "./k8s-types.ts";

export type ProbeKind = "readiness" | "liveness" | "startup";

export type ProbeTarget = {
  /** Address the probes connect to: the pod IP, or the node's underlay IP for hostNetwork pods. */
  host: string;
  ports: readonly ContainerPort[];
  /** PID of the container's main process, for exec probes. */
  pid: () => number | undefined;
  env: Readonly<Record<string, string>>;
};

export type ProbeOutcome = { ok: boolean; message: string };

export function resolvePort(port: number | string, ports: readonly ContainerPort[]): number {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  const named = ports.find((p) => p.name === port);
  if (!named) throw new Error(`port ${port} not found in container ports`);
  return named.containerPort;
}

function httpProbe(probe: NonNullable<Probe["httpGet"]>, target: ProbeTarget, timeoutMs: number) {
  return new Promise<ProbeOutcome>((resolve) => {
    const port = resolvePort(probe.port, target.ports);
    const mod = probe.scheme === "HTTPS" ? https : http;
    const headers: Record<string, string> = { "user-agent": "kube-probe/trellis-sim", accept: "*/*" };
    for (const h of probe.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
    const req = mod.request(
      {
        host: probe.host || target.host,
        port,
        path: probe.path || "/",
        method: "GET",
        headers,
        timeout: timeoutMs,
        agent: false,
        ...(probe.scheme === "HTTPS" ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve({ ok: code >= 200 && code < 400, message: `HTTP probe failed with statuscode: ${code}` });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs}ms`)));
    req.on("error", (err) => resolve({ ok: false, message: `Get ${probe.path ?? "/"}: ${err.message}` }));
    req.end();
  });
}

function tcpProbe(probe: NonNullable<Probe["tcpSocket"]>, target: ProbeTarget, timeoutMs: number) {
  return new Promise<ProbeOutcome>((resolve) => {
    const port = resolvePort(probe.port, target.ports);
    const sock = net.connect({ host: probe.host || target.host, port, timeout: timeoutMs });
    sock.once("connect", () => {
      sock.destroy();
      resolve({ ok: true, message: "" });
    });
    sock.once("timeout", () => sock.destroy(new Error(`dial timeout after ${timeoutMs}ms`)));
    sock.once("error", (err) =>
      resolve({ ok: false, message: `dial tcp ${target.host}:${port}: ${err.message}` }),
    );
  });
}

/** grpc.health.v1.Health/Check; SERVING (1) is success. */
function grpcProbe(probe: NonNullable<Probe["grpc"]>, target: ProbeTarget, timeoutMs: number) {
  return new Promise<ProbeOutcome>((resolve) => {
    const session = http2.connect(`http://${target.host}:${probe.port}`);
    const finish = (o: ProbeOutcome) => {
      session.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ ok: false, message: `timeout after ${timeoutMs}ms` }), timeoutMs);
    session.on("error", (err) => {
      clearTimeout(timer);
      finish({ ok: false, message: err.message });
    });
    const service = Buffer.from(probe.service ?? "");
    const msg = service.length
      ? Buffer.concat([Buffer.from([0x0a, service.length]), service])
      : Buffer.alloc(0);
    const frame = Buffer.alloc(5 + msg.length);
    frame.writeUInt32BE(msg.length, 1);
    msg.copy(frame, 5);
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", (err) => {
      clearTimeout(timer);
      finish({ ok: false, message: err.message });
    });
    stream.on("end", () => {
      clearTimeout(timer);
      const body = Buffer.concat(chunks);
      // message: field 1 (varint) = status
      const serving = body.length >= 7 && body[5] === 0x08 && body[6] === 1;
      finish({
        ok: serving,
        message: serving ? "" : "service unhealthy (responded with non-SERVING status)",
      });
    });
    stream.end(frame);
  });
}

async function execProbe(
  command: readonly string[],
  target: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const pid = target.pid();
  if (pid === undefined) return { ok: false, message: "container is not running" };
  const r = await run("nsenter", ["-t", String(pid), "-m", "-n", "-u", "--", ...command], {
    env: { ...target.env },
    timeoutMs,
  });
  return {
    ok: r.code === 0,
    message: `command exited ${r.code}: ${(r.stdout + r.stderr).trim().slice(0, 200)}`,
  };
}

export async function runProbe(probe: Probe, target: ProbeTarget): Promise<ProbeOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  try {
    if (probe.httpGet) return await httpProbe(probe.httpGet, target, timeoutMs);
    if (probe.tcpSocket) return await tcpProbe(probe.tcpSocket, target, timeoutMs);
    if (probe.grpc) return await grpcProbe(probe.grpc, target, timeoutMs);
    if (probe.exec?.command?.length) return await execProbe(probe.exec.command, target, timeoutMs);
    return { ok: false, message: "probe has no handler" };
  } catch (err) {
    return { ok: false, message: String(err) };
  }
}

/**
 * Thresholds: the result flips to success after successThreshold consecutive
 * successes and to failure after failureThreshold consecutive failures.
 * Readiness starts false, liveness true, startup false (and stops at success).
 */
export class ProbeState {
  readonly #success: number;
  readonly #failure: number;
  #okRun = 0;
  #failRun = 0;
  result: boolean;

  constructor(kind: ProbeKind, probe: Probe) {
    this.#success = kind === "readiness" ? (probe.successThreshold ?? 1) : 1;
    this.#failure = probe.failureThreshold ?? 3;
    this.result = kind === "liveness";
  }

  /** Records one outcome; returns true when the result changed. */
  record(ok: boolean): boolean {
    const before = this.result;
    if (ok) {
      this.#okRun++;
      this.#failRun = 0;
      if (this.#okRun >= this.#success) this.result = true;
    } else {
      this.#failRun++;
      this.#okRun = 0;
      if (this.#failRun >= this.#failure) this.result = false;
    }
    return before !== this.result;
  }
}

export class Prober {
  readonly kind: ProbeKind;
  readonly #probe: Probe;
  readonly #target: ProbeTarget;
  readonly #onChange: (result: boolean, message: string) => void;
  readonly #state: ProbeState;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    kind: ProbeKind,
    probe: Probe,
    target: ProbeTarget,
    onChange: (result: boolean, message: string) => void,
  ) {
    this.kind = kind;
    this.#probe = probe;
    this.#target = target;
    this.#onChange = onChange;
    this.#state = new ProbeState(kind, probe);
  }

  get result(): boolean {
    return this.#state.result;
  }

  start(): void {
    this.#timer = setTimeout(() => void this.#tick(), (this.#probe.initialDelaySeconds ?? 0) * 1000);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    const outcome = await runProbe(this.#probe, this.#target);
    if (this.#stopped) return;
    const changed = this.#state.record(outcome.ok);
    if (changed) this.#onChange(this.#state.result, outcome.message);
    if (this.kind === "startup" && this.#state.result) return;
    this.#timer = setTimeout(() => void this.#tick(), (this.#probe.periodSeconds ?? 10) * 1000);
  }
}
