// face → smiley: GET http://<smiley>/<center|edge>/?row=R&col=C over a
// keep-alive agent, forwarding X-Faces-User. No timeout and no retry (the
// mesh owns those). Degrades: 504 → Sleeping, any other failure → Cursing.
import http from "node:http";
import { SMILEYS, type SmileyName, smileyNameOf } from "../lib/catalog.ts";
import { DEBUG_BACKEND_HEADER, DEBUG_ROUTE_HEADER, type Served } from "../lib/face-cell.ts";

export type SmileyTarget = { host: string; port: number; agent: http.Agent };

export type SmileyOutcome = {
  entity: string;
  name: SmileyName | "Unknown";
  served: Served;
  /** Set when the smiley was degraded. */
  error?: string;
};

function header(res: http.IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

export function callSmiley(
  target: SmileyTarget,
  kind: "center" | "edge",
  query: { row: string; col: string },
  user: string | undefined,
): Promise<SmileyOutcome> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  const path = `/${kind}/?${new URLSearchParams({ row: query.row, col: query.col })}`;
  const headers: http.OutgoingHttpHeaders = { accept: "application/json" };
  if (user !== undefined) headers["x-faces-user"] = user;

  return new Promise((done) => {
    const degraded = (name: "Sleeping" | "Cursing", served: Served, error: string): void =>
      done({ entity: SMILEYS[name], name, served, error: `smiley: ${error}` });

    const req = http.get(
      { host: target.host, port: target.port, path, headers, agent: target.agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) => degraded("Cursing", { status: "error", ms: ms() }, err.message));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const served: Served = { status: String(status), ms: ms() };
          const pod = header(res, "x-faces-pod");
          const route = header(res, DEBUG_ROUTE_HEADER);
          const backend = header(res, DEBUG_BACKEND_HEADER);
          if (pod !== undefined) served.pod = pod;
          if (route !== undefined) served.route = route;
          if (backend !== undefined) served.backend = backend;
          if (status === 504) return degraded("Sleeping", served, "504 Gateway Timeout");
          if (status !== 200) return degraded("Cursing", served, `HTTP ${status}`);
          let entity: unknown;
          try {
            entity = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { smiley?: unknown }).smiley;
          } catch {
            return degraded("Cursing", served, "response is not JSON");
          }
          if (typeof entity !== "string" || entity === "") {
            return degraded("Cursing", served, "response has no smiley");
          }
          done({ entity, name: smileyNameOf(entity) ?? "Unknown", served });
        });
      },
    );
    req.on("error", (err) => degraded("Cursing", { status: "error", ms: ms() }, err.message));
  });
}
