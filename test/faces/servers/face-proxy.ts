// faces-gui → face: forwards one GET to http://<face>/<rest> over a keep-alive
// agent, with X-Faces-User, and relays status, headers and body. 502 when face
// cannot be reached. A request that failed on a reused keep-alive connection
// before any response byte (the server closed it while idle) is sent once
// more on a fresh connection, as HTTP clients do for idempotent requests.
import http from "node:http";

export type FaceTarget = { host: string; port: number; agent: http.Agent };

/** Response headers that describe one hop's connection, not the response. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"]);

export function proxyToFace(
  target: FaceTarget,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  path: string,
  onStatus: (status: number) => void,
): void {
  const headers: http.OutgoingHttpHeaders = { accept: req.headers.accept ?? "application/json" };
  const user = req.headers["x-faces-user"];
  if (user !== undefined) headers["x-faces-user"] = user;

  const attempt = (mayRetry: boolean) => {
    let answered = false;
    const upstream = http.get(
      { host: target.host, port: target.port, path, headers, agent: target.agent },
      (up) => {
        answered = true;
        const out: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(up.headers))
          if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
        const status = up.statusCode ?? 502;
        res.writeHead(status, out);
        up.pipe(res);
        up.on("error", (err) => res.destroy(err));
        onStatus(status);
      },
    );
    upstream.on("error", (err) => {
      if (answered || res.headersSent) {
        res.destroy(err);
        return;
      }
      if (mayRetry && upstream.reusedSocket && !res.destroyed) {
        attempt(false);
        return;
      }
      const body = JSON.stringify({ error: `face unreachable: ${err.message}` });
      res.writeHead(502, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
      onStatus(502);
    });
    res.once("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
  };
  attempt(true);
}
