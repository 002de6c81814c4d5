// The controller end of the agent protocol (agent.proto): authenticates each
// stream, checks the agent asks only for its own node, sends that node's
// table and every later version, and records ACK / NACK / stats. A stream
// starts with a full table; later versions go as deltas against the previous
// one (tableDelta: the parts that changed, a few hundred bytes where the full
// table is megabytes).
import * as grpc from "@grpc/grpc-js";
import {
  type AgentMessage,
  type AgentStreamServer,
  AgentStreamService,
  ControllerMessage,
  type NodeTable,
  type TableVersion,
  tableDelta,
} from "@trellis/api";
import type { Logger } from "pino";
import { type AgentRegistry, sameVersion } from "./agent-registry.ts";
import type { BackendStatsWindow } from "./backend-stats-window.ts";
import { encodeTableUpdateMessage } from "./table-bytes.ts";

export interface AgentIdentity {
  node: string;
  /** "namespace/name" of the agent pod the credential belongs to. */
  pod: string;
}

/** Maps a bearer token to the agent's identity; rejects with a message that says what was wrong. */
export type AuthenticateAgent = (token: string) => Promise<AgentIdentity>;

export interface AgentStreamHubOptions {
  log: Logger;
  registry: AgentRegistry;
  stats: BackendStatsWindow;
  currentTable: (node: string) => NodeTable | undefined;
  authenticate: AuthenticateAgent;
  onNack?: (node: string, version: TableVersion, reason: string) => void;
  onAck?: (node: string, version: TableVersion) => void;
  /** Send every version as a full table, never as a delta (for comparison in benchmarks). */
  fullTables?: boolean;
}

type Call = grpc.ServerDuplexStream<AgentMessage, ControllerMessage>;

interface Session {
  node: string;
  call: Call;
  lastSent?: TableVersion;
  /** The table of lastSent when known: the base of the next delta. */
  lastSentTable?: NodeTable;
}

function fail(call: Call, code: grpc.status, details: string): void {
  // grpc-js turns an 'error' emitted on a server call into the stream's final status.
  call.emit("error", { code, details, metadata: new grpc.Metadata() });
}

export class AgentStreamHub {
  readonly #opts: AgentStreamHubOptions;
  readonly #sessions = new Map<string, Set<Session>>();

  constructor(opts: AgentStreamHubOptions) {
    this.#opts = opts;
  }

  /** Pushes the current table to every connected agent of these nodes that does not have it yet. */
  publish(nodes: Iterable<string>): void {
    for (const node of nodes) for (const s of this.#sessions.get(node) ?? []) this.#sendCurrent(s);
  }

  connectedNodes(): string[] {
    return [...this.#sessions.keys()].sort();
  }

  service(): AgentStreamServer {
    return { connect: (call: Call) => void this.#connect(call) };
  }

  async #connect(call: Call): Promise<void> {
    const { log } = this.#opts;
    const peer = call.getPeer();
    const auth = String(call.metadata.get("authorization")[0] ?? "");
    const token = auth.startsWith("Bearer ") ? auth.slice(7).trim() : "";
    if (!token) {
      log.warn(
        { peer },
        "agent refused: no bearer token (the agent must send its projected ServiceAccount token)",
      );
      fail(
        call,
        grpc.status.UNAUTHENTICATED,
        "missing bearer token: mount a projected ServiceAccount token with audience trellis",
      );
      return;
    }
    let identity: AgentIdentity;
    try {
      identity = await this.#opts.authenticate(token);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      log.warn({ peer, reason }, "agent refused: token rejected");
      fail(call, grpc.status.UNAUTHENTICATED, `token rejected: ${reason}`);
      return;
    }
    const session: Session = { node: identity.node, call };
    let greeted = false;
    call.on("data", (msg: AgentMessage) => {
      const m = msg.message;
      if (!greeted) {
        if (m?.$case !== "hello") {
          fail(call, grpc.status.FAILED_PRECONDITION, "the first message must be Hello");
          return;
        }
        if (m.hello.node !== identity.node) {
          log.warn(
            { peer, pod: identity.pod, tokenNode: identity.node, askedNode: m.hello.node },
            "agent refused: asked for another node's table",
          );
          fail(
            call,
            grpc.status.PERMISSION_DENIED,
            `this credential belongs to an agent on node ${identity.node}, not ${m.hello.node}`,
          );
          return;
        }
        greeted = true;
        session.lastSent = m.hello.lastApplied;
        // An agent that already serves the current version holds its table: deltas can build on it.
        const current = this.#opts.currentTable(identity.node);
        if (current?.version && sameVersion(current.version, m.hello.lastApplied))
          session.lastSentTable = current;
        const set = this.#sessions.get(identity.node) ?? new Set<Session>();
        this.#sessions.set(identity.node, set);
        set.add(session);
        this.#opts.registry.connected(identity.node, identity.pod);
        if (m.hello.lastApplied) this.#opts.registry.acked(identity.node, m.hello.lastApplied);
        log.info(
          {
            node: identity.node,
            pod: identity.pod,
            peer,
            lastApplied: m.hello.lastApplied,
            agentVersion: m.hello.agentVersion,
          },
          "agent connected",
        );
        this.#sendCurrent(session);
        return;
      }
      switch (m?.$case) {
        case "ack":
          if (m.ack.version) {
            this.#opts.registry.acked(identity.node, m.ack.version);
            this.#opts.onAck?.(identity.node, m.ack.version);
          }
          break;
        case "nack":
          if (m.nack.version) {
            this.#opts.registry.nacked(identity.node, m.nack.version, m.nack.reason);
            log.warn(
              { node: identity.node, version: m.nack.version, reason: m.nack.reason },
              "agent rejected table",
            );
            this.#opts.onNack?.(identity.node, m.nack.version, m.nack.reason);
          }
          break;
        case "backendStats":
          this.#opts.stats.add(m.backendStats);
          break;
        default:
          log.debug({ node: identity.node }, "ignoring unexpected agent message");
      }
    });
    const close = () => {
      const set = this.#sessions.get(identity.node);
      if (!set?.delete(session)) return;
      if (set.size === 0) {
        this.#sessions.delete(identity.node);
        this.#opts.registry.disconnected(identity.node);
      }
      log.info({ node: identity.node, peer }, "agent disconnected");
    };
    call.on("end", () => {
      close();
      call.end();
    });
    call.on("error", close);
    call.on("cancelled", close);
    call.on("close", close);
  }

  #sendCurrent(s: Session): void {
    const table = this.#opts.currentTable(s.node);
    if (!table?.version || sameVersion(s.lastSent, table.version)) return;
    const base = this.#opts.fullTables ? undefined : s.lastSentTable;
    s.lastSent = table.version;
    s.lastSentTable = table;
    this.#opts.registry.sent(s.node, table.version);
    s.call.write(
      base
        ? { message: { $case: "tableDelta", tableDelta: tableDelta(base, table) } }
        : { message: { $case: "tableUpdate", tableUpdate: { table } } },
    );
  }
}

export const AGENT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Without keepalive a half-open stream (node rebooted, link cut) stalls forever.
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.http2.min_ping_interval_without_data_ms": 5_000,
  "grpc.max_send_message_length": 64 * 1024 * 1024,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
};

/**
 * The AgentStream service definition the controller serves: the generated one,
 * with table updates encoded from the tables' cached parts (same bytes).
 */
export const AGENT_STREAM_SERVICE: typeof AgentStreamService = {
  ...AgentStreamService,
  connect: {
    ...AgentStreamService.connect,
    responseSerialize: (value: ControllerMessage): Buffer =>
      value.message?.$case === "tableUpdate" && value.message.tableUpdate.table
        ? encodeTableUpdateMessage(value.message.tableUpdate.table)
        : Buffer.from(ControllerMessage.encode(value).finish()),
  },
};
