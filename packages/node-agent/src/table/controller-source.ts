// Tables from the controller over the agent protocol (agent.proto). Keeps the
// agent serving through anything the control plane does: the last good table
// is persisted and applied at start before the controller answers, a NACK or
// a lost stream leaves the current table in place, and reconnects back off
// (capped, jittered) so hundreds of agents don't stampede a restarted controller.
// Versions after the first on a stream come as deltas against the previous
// table received; the full table is rebuilt here, so the agent applies (and
// persists) whole tables either way.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import * as grpc from "@grpc/grpc-js";
import {
  type AgentMessage,
  AgentStreamClient,
  applyTableDelta,
  type BackendStats,
  type ControllerMessage,
  NodeTable,
  type TableVersion,
} from "@trellis/api";
import type { Logger } from "pino";
import type { TableSource } from "./source.ts";

export interface ControllerSourceOptions {
  /** host:port of the controller's agent channel. */
  address: string;
  /** PEM of the CA that signed the controller's certificate. */
  caFile: string;
  /** Projected ServiceAccount token (audience trellis); re-read on every connect because the kubelet rotates it. */
  tokenFile: string;
  /** TLS name to verify instead of the address's host (e.g. the controller Service's DNS name). */
  serverName?: string;
  node: string;
  /** Where the last good table is kept between restarts. */
  stateFile: string;
  agentVersion: string;
  log: Logger;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /**
   * How long one attempt may take to reach a ready connection (TCP, TLS, HTTP/2) before it
   * is abandoned for a fresh one (default 10000). Without it a SYN to a controller pod that
   * just died (its Service endpoint not yet removed) waits out the kernel's SYN retries, ~2 min.
   */
  connectTimeoutMs?: number;
  /** How often to send BackendStats (default 5000; 0 = never). */
  statsIntervalMs?: number;
  /** Per-backend counters since the last call; undefined when there is nothing to report. */
  takeStats?: () => BackendStats | undefined;
}

type Stream = grpc.ClientDuplexStream<AgentMessage, ControllerMessage>;

export class ControllerTableSource implements TableSource {
  readonly #o: ControllerSourceOptions;
  #sink: ((table: NodeTable) => Promise<unknown>) | null = null;
  #client: AgentStreamClient | null = null;
  #stream: Stream | null = null;
  #stopped = false;
  #failures = 0;
  #retry: NodeJS.Timeout | null = null;
  #statsTimer: NodeJS.Timeout | null = null;
  #applied: TableVersion | undefined;
  /** The table last applied: the base of a stream's first delta when the Hello named its version. */
  #appliedTable: NodeTable | null = null;
  /** The table last received on the current stream (applied or not): the base of the next delta. */
  #received: NodeTable | null = null;
  #pending: NodeTable | null = null;
  #applying: Promise<void> | null = null;

  constructor(opts: ControllerSourceOptions) {
    this.#o = opts;
  }

  /** Version of the table the agent serves, if any. */
  applied(): TableVersion | undefined {
    return this.#applied;
  }

  async start(sink: (table: NodeTable) => Promise<unknown>): Promise<void> {
    this.#sink = sink;
    await this.#applyPersisted();
    this.#connect();
    const every = this.#o.statsIntervalMs ?? 5000;
    if (this.#o.takeStats && every > 0) {
      this.#statsTimer = setInterval(() => this.#sendStats(), every);
      this.#statsTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    if (this.#statsTimer) clearInterval(this.#statsTimer);
    this.#stream?.cancel();
    this.#client?.close();
    await this.#applying;
    this.#sink = null;
  }

  async #applyPersisted(): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.#o.stateFile);
    } catch {
      return; // first start on this node
    }
    try {
      const table = NodeTable.decode(bytes);
      if (table.node !== this.#o.node) throw new Error(`persisted table is for node ${table.node}`);
      await this.#sink?.(table);
      this.#applied = table.version;
      this.#appliedTable = table;
      this.#o.log.info(
        { version: table.version, file: this.#o.stateFile },
        "serving persisted table until the controller answers",
      );
    } catch (err) {
      this.#o.log.warn({ err, file: this.#o.stateFile }, "ignoring unusable persisted table");
    }
  }

  #connect(): void {
    if (this.#stopped) return;
    void readFile(this.#o.tokenFile, "utf8").then(
      (token) => this.#open(token.trim()),
      (err: unknown) => {
        this.#o.log.error(
          { err, tokenFile: this.#o.tokenFile },
          "cannot read the ServiceAccount token; is the projected volume mounted?",
        );
        this.#scheduleReconnect();
      },
    );
  }

  #open(token: string): void {
    const log = this.#o.log;
    // A fresh channel per attempt: grpc-js's own reconnect backoff (up to
    // minutes) would otherwise override ours after a long controller outage.
    this.#client?.close();
    let ca: Buffer;
    try {
      ca = readFileSync(this.#o.caFile);
    } catch (err) {
      log.error({ err, caFile: this.#o.caFile }, "cannot read the controller CA");
      this.#scheduleReconnect();
      return;
    }
    this.#client = new AgentStreamClient(this.#o.address, grpc.credentials.createSsl(ca), {
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5_000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      ...(this.#o.serverName ? { "grpc.ssl_target_name_override": this.#o.serverName } : {}),
    });
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${token}`);
    const client = this.#client;
    const stream = client.connect(md);
    this.#stream = stream;
    const connectTimeoutMs = this.#o.connectTimeoutMs ?? 10_000;
    client.waitForReady(Date.now() + connectTimeoutMs, (err) => {
      if (!err || this.#stream !== stream) return;
      log.warn(
        { address: this.#o.address, connectTimeoutMs },
        "controller not reachable in time; retrying on a new connection",
      );
      stream.cancel();
    });
    this.#received = this.#appliedTable;
    const connectedAt = Date.now();
    stream.write({
      message: {
        $case: "hello",
        hello: { node: this.#o.node, lastApplied: this.#applied, agentVersion: this.#o.agentVersion },
      },
    });
    stream.on("data", (msg: ControllerMessage) => {
      if (this.#stream !== stream) return;
      const m = msg.message;
      let table: NodeTable;
      if (m?.$case === "tableUpdate" && m.tableUpdate.table) table = m.tableUpdate.table;
      else if (m?.$case === "tableDelta") {
        if (!this.#received) return this.#resync(stream, "a delta before any table");
        try {
          table = applyTableDelta(this.#received, m.tableDelta);
        } catch (err) {
          return this.#resync(stream, err instanceof Error ? err.message : String(err));
        }
      } else return;
      this.#received = table;
      this.#failures = 0;
      this.#enqueue(table);
    });
    stream.on("error", (err: grpc.ServiceError) => {
      if (this.#stopped) return;
      const refused = err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.PERMISSION_DENIED;
      (refused ? log.error : log.warn).call(
        log,
        { code: err.code, details: err.details, lastApplied: this.#applied },
        refused
          ? "controller refused this agent's credentials"
          : "controller stream lost; serving the last good table",
      );
    });
    // grpc-js ends every call with exactly one 'status' event, whether it was
    // refused, lost or never connected; 'close' is not guaranteed.
    stream.on("status", () => {
      if (this.#stream === stream) this.#stream = null;
      // A stream that lived a while was healthy: start the backoff over.
      if (Date.now() - connectedAt > 10_000) this.#failures = 0;
      this.#scheduleReconnect();
    });
  }

  /** A delta this agent cannot build on: a new stream starts with a full table. */
  #resync(stream: Stream, reason: string): void {
    this.#o.log.warn({ reason }, "cannot apply table delta; reconnecting for a full table");
    this.#stream = null;
    stream.cancel();
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#retry) return;
    const initial = this.#o.backoffInitialMs ?? 200;
    const max = this.#o.backoffMaxMs ?? 30_000;
    const base = Math.min(max, initial * 2 ** Math.min(this.#failures, 20));
    this.#failures++;
    // Full jitter on the upper half keeps a fleet from reconnecting in lockstep.
    const delay = base / 2 + Math.random() * (base / 2);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.#connect();
    }, delay);
  }

  /** Applies tables one at a time, in order; a table that arrives while one applies replaces any waiting one. */
  #enqueue(table: NodeTable): void {
    this.#pending = table;
    if (this.#applying) return;
    this.#applying = (async () => {
      while (this.#pending) {
        const next = this.#pending;
        this.#pending = null;
        await this.#apply(next);
      }
      this.#applying = null;
    })();
  }

  async #apply(table: NodeTable): Promise<void> {
    const version = table.version;
    if (!version) return;
    try {
      if (table.node !== this.#o.node)
        throw new Error(`table is for node ${table.node}, this agent runs on ${this.#o.node}`);
      await this.#sink?.(table);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.#o.log.warn({ version, reason }, "table rejected; keeping the last good table");
      this.#send({ message: { $case: "nack", nack: { version, reason } } });
      return;
    }
    this.#applied = version;
    this.#appliedTable = table;
    this.#send({ message: { $case: "ack", ack: { version } } });
    await this.#persist(table);
  }

  async #persist(table: NodeTable): Promise<void> {
    const tmp = `${this.#o.stateFile}.${randomUUID()}.tmp`;
    try {
      await mkdir(dirname(this.#o.stateFile), { recursive: true });
      await writeFile(tmp, NodeTable.encode(table).finish());
      await rename(tmp, this.#o.stateFile);
    } catch (err) {
      this.#o.log.warn(
        { err, file: this.#o.stateFile },
        "cannot persist table; a restart will wait for the controller",
      );
    }
  }

  #sendStats(): void {
    // Taken even without a stream: the controller's window is about now, so
    // counts of a disconnected stretch are dropped rather than sent late.
    const stats = this.#o.takeStats?.();
    if (stats && stats.backends.length > 0)
      this.#send({ message: { $case: "backendStats", backendStats: stats } });
  }

  #send(msg: AgentMessage): void {
    this.#stream?.write(msg);
  }
}
