// One request to the node agent over its unix socket: POST /v1/cni.

import { request } from "node:http";
import { CNI_REQUEST_PATH, type CniRequest } from "@trellis/api/cni";

export type AgentAnswer =
  /** 200: the pod's capture state is programmed. */
  | { kind: "done"; captured: boolean }
  /** The agent answered and refused; its message goes to the runtime. */
  | { kind: "refused"; status: number; message: string }
  /** Nobody answered in time, or the agent said it cannot serve yet (503). */
  | { kind: "unavailable"; reason: string };

const MAX_BODY = 64 * 1024;

function errorMessage(body: string): string | undefined {
  try {
    const b: unknown = JSON.parse(body);
    const m = typeof b === "object" && b !== null ? (b as Record<string, unknown>).error : undefined;
    return typeof m === "string" ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Classifies a complete HTTP answer; pure so the contract's edge cases are testable without a socket. */
export function classifyAnswer(status: number, body: string): AgentAnswer {
  const message = errorMessage(body) ?? (body.trim().slice(0, 200) || `HTTP ${status}`);
  if (status === 503) return { kind: "unavailable", reason: `agent answered 503: ${message}` };
  if (status !== 200) return { kind: "refused", status, message };
  try {
    const b: unknown = JSON.parse(body);
    const captured =
      typeof b === "object" && b !== null ? (b as Record<string, unknown>).captured : undefined;
    if (typeof captured === "boolean") return { kind: "done", captured };
  } catch {
    // falls through: a 200 we cannot read is a broken agent, not a success
  }
  return { kind: "refused", status, message: `agent answered 200 without {captured}: ${body.slice(0, 200)}` };
}

export function askAgent(socketPath: string, req: CniRequest, timeoutMs: number): Promise<AgentAnswer> {
  return new Promise((resolve) => {
    const payload = JSON.stringify(req);
    let settled = false;
    const settle = (a: AgentAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(a);
    };
    const r = request(
      {
        socketPath,
        path: CNI_REQUEST_PATH,
        method: "POST",
        // One request per process: a pooled connection would only keep the process alive.
        agent: false,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          connection: "close",
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size <= MAX_BODY) chunks.push(c);
        });
        res.on("end", () =>
          settle(classifyAnswer(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"))),
        );
        res.on("error", (e) => settle({ kind: "unavailable", reason: `reading the answer: ${e.message}` }));
      },
    );
    const timer = setTimeout(() => {
      settle({ kind: "unavailable", reason: `no answer within ${timeoutMs / 1000}s` });
      r.destroy();
    }, timeoutMs);
    r.on("error", (e: NodeJS.ErrnoException) => settle({ kind: "unavailable", reason: e.message }));
    r.end(payload);
  });
}
