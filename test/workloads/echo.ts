// Echo workload for the cluster-in-a-box: answers every request with a JSON
// description of the request and the pod that served it.
//   PORT (default 8080); pod name from POD_NAME or HOSTNAME.
//   GET /healthz → 200 "ok".
// Graceful on SIGTERM: stops accepting, finishes in-flight requests, exits 0.
import { readFileSync } from "node:fs";
import http from "node:http";

const port = Number(process.env.PORT ?? 8080);
const pod = process.env.POD_NAME ?? process.env.HOSTNAME ?? "unknown";
const namespace = process.env.POD_NAMESPACE ?? serviceAccountNamespace();

function serviceAccountNamespace(): string {
  try {
    return readFileSync("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "utf8").trim();
  } catch {
    return "";
  }
}

const server = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain", "x-echo-pod": pod });
    res.end("ok\n");
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = JSON.stringify({
      pod,
      namespace,
      path: req.url ?? "/",
      method: req.method ?? "GET",
      headers: req.headers,
      bodyBytes: Buffer.concat(chunks).length,
    });
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "x-echo-pod": pod,
    });
    res.end(body);
  });
});

server.keepAliveTimeout = 65_000;
server.listen(port, () => {
  console.log(JSON.stringify({ msg: "echo listening", port, pod, namespace }));
});

function shutdown(signal: string): void {
  console.log(JSON.stringify({ msg: "echo shutting down", signal }));
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5_000).unref();
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
