// A probe pod for tests: `GET /dial?url=<url>&count=N` performs N requests
// from inside this pod's network namespace and answers with what came back,
// so a test in the root netns can make a pod call a Service.
import http from "node:http";

interface DialResult {
  status: number;
  body?: string;
  headers?: Record<string, string | string[] | undefined>;
  error?: string;
}

/**
 * One request on a new connection (no keep-alive pool): each dial is a fresh
 * connection, so a Service's load balancing (kube-proxy or the mesh) decides
 * anew for every request, as it would for independent clients.
 */
function dialOnce(url: string, timeoutMs: number, headers: Record<string, string>): Promise<DialResult> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      res.on("error", (err) => resolve({ status: 0, error: err.message }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err) => resolve({ status: 0, error: err.message }));
  });
}

const server = http.createServer(async (req, res) => {
  const u = new URL(req.url ?? "/", "http://local");
  if (u.pathname === "/healthz") {
    res.end("ok");
    return;
  }
  if (u.pathname !== "/dial") {
    res.writeHead(404).end();
    return;
  }
  const target = u.searchParams.get("url");
  const count = Math.min(Number(u.searchParams.get("count") ?? 1) || 1, 10_000);
  const timeoutMs = Number(u.searchParams.get("timeoutMs") ?? 5000) || 5000;
  if (!target) {
    res.writeHead(400).end("url query parameter required\n");
    return;
  }
  const headers: Record<string, string> = {};
  for (const h of u.searchParams.getAll("header")) {
    const i = h.indexOf(":");
    if (i > 0) headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  const results: DialResult[] = [];
  for (let i = 0; i < count; i++) results.push(await dialOnce(target, timeoutMs, headers));
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(results));
});

server.listen(Number(process.env.PORT ?? 8080));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
