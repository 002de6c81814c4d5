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

async function dialOnce(
  url: string,
  timeoutMs: number,
  headers: Record<string, string>,
): Promise<DialResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers });
    const h: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      h[k] = v;
    });
    return { status: res.status, headers: h, body: await res.text() };
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return { status: 0, error: `${err instanceof Error ? err.message : String(err)}${cause}` };
  }
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
