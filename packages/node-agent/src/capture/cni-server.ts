// The agent's end of the CNI shim contract (@trellis/api/cni): HTTP on a unix
// socket only root on the node can open.
import { randomUUID } from "node:crypto";
import { chmod, mkdir, rename, rm, stat } from "node:fs/promises";
import type http from "node:http";
import { dirname } from "node:path";
import {
  CNI_REQUEST_PATH,
  type CniErrorResponse,
  type CniRequest,
  cniRequestProblem,
} from "@trellis/api/cni";
import type { Logger } from "pino";
import { http as nodeHttp } from "../node-http.ts";
import { type Capture, CniRefusal } from "./capture.ts";
import type { CaptureMetrics } from "./capture-metrics.ts";

const MAX_BODY_BYTES = 64 * 1024;

export interface CniServer {
  readonly server: http.Server;
  /**
   * Stops serving. The socket path is removed only while it is still this server's: during a
   * rolling update the next agent has already renamed its own socket over it.
   */
  close(): Promise<void>;
  /**
   * False once another agent has renamed its socket over the path: a newer agent on this node
   * (rolling update) owns the node's capture now. A missing path does not count.
   */
  owned(): Promise<boolean>;
}

export async function startCniServer(
  capture: Capture,
  socketPath: string,
  log: Logger,
  metrics?: CaptureMetrics,
): Promise<CniServer> {
  const server = nodeHttp.createServer((req, res) => {
    const started = performance.now();
    const reply = (status: number, body: object) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(`${JSON.stringify(body)}\n`);
    };
    if (req.url !== CNI_REQUEST_PATH || req.method !== "POST") {
      reply(404, { error: `only POST ${CNI_REQUEST_PATH}` } satisfies CniErrorResponse);
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (b: Buffer) => {
      size += b.length;
      if (size > MAX_BODY_BYTES) {
        reply(413, { error: `body over ${MAX_BODY_BYTES} bytes` } satisfies CniErrorResponse);
        req.destroy();
      } else chunks.push(b);
    });
    req.on("end", () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        reply(400, { error: "body is not JSON" } satisfies CniErrorResponse);
        return;
      }
      const problem = cniRequestProblem(body);
      if (problem !== undefined) {
        reply(400, { error: problem } satisfies CniErrorResponse);
        return;
      }
      const request = body as CniRequest;
      capture.cni(request).then(
        (answer) => {
          metrics?.cniRequest(
            request.command,
            answer.captured ? "captured" : "uncaptured",
            (performance.now() - started) / 1000,
          );
          reply(200, answer);
        },
        (err: Error) => {
          metrics?.cniRequest(request.command, "refused", (performance.now() - started) / 1000);
          log.warn(
            { err: err.message, pod: `${request.podNamespace}/${request.podName}`, command: request.command },
            "cni request refused",
          );
          reply(err instanceof CniRefusal ? err.status : 500, {
            error: err.message,
          } satisfies CniErrorResponse);
        },
      );
    });
  });
  await mkdir(dirname(socketPath), { recursive: true });
  // Bound under a private name, then renamed over the path: the shim always finds a socket that
  // answers, either the previous agent's or this one's, never a missing or refusing one. Node
  // unlinks a unix socket's bind path on close, so the old agent's close removes only its own
  // private name, not this socket.
  const bound = `${socketPath}.${randomUUID()}.tmp`;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(bound, () => {
      server.off("error", reject);
      resolve();
    });
  });
  await chmod(bound, 0o600);
  const { ino } = await stat(bound);
  await rename(bound, socketPath);
  log.info({ socket: socketPath }, "cni socket listening");
  return {
    server,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      const now = await stat(socketPath).catch(() => null);
      // Between the check and the unlink a new agent could rename its socket over the path; that
      // needs it to start within the same instant, which a surge roll never does (the new agent
      // is Ready before the old one is told to stop).
      if (now?.ino === ino) await rm(socketPath, { force: true });
    },
    owned: async () => {
      const now = await stat(socketPath).catch(() => null);
      return now === null || now.ino === ino;
    },
  };
}
