// faces-gui: serves the page (files under test/faces/gui/) and proxies
// /face/<rest> to http://<face>/<rest> (face-proxy.ts), so the demo needs no ingress.
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { extname, join } from "node:path";
import { delayRequest } from "../lib/delay.ts";
import { shouldFail } from "../lib/error-fraction.ts";
import { parseHostPort } from "../lib/host-port.ts";
import { closeServer, listen } from "../lib/listen.ts";
import type { Logger } from "../lib/logger.ts";
import { createMetrics } from "../lib/metrics.ts";
import { startMetricsServer } from "../lib/metrics-server.ts";
import type { RunningWorkload } from "../lib/running-workload.ts";
import type { WorkloadConfig } from "../lib/workload-config.ts";
import { proxyToFace } from "./face-proxy.ts";

export type GuiOptions = WorkloadConfig & {
  /** host[:port] of the face Service (FACE_SERVICE, default "face", port 80). */
  faceService: string;
  /** Directory with index.html and its assets. */
  guiDir: string;
  logger: Logger;
};

export const GUI_DIR = join(import.meta.dirname, "..", "gui");

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

type Asset = { body: Buffer; type: string };

/** The page's files, read once: only these names are ever served (no path from the request touches the disk). */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    if (type) assets.set(`/${name}`, { body: readFileSync(join(dir, name)), type });
  }
  const index = assets.get("/index.html");
  if (!index) throw new Error(`no index.html in ${dir}`);
  assets.set("/", index);
  return assets;
}

export async function startGui(o: GuiOptions): Promise<RunningWorkload> {
  const metrics = createMetrics();
  const assets = loadAssets(o.guiDir);
  const agent = new http.Agent({ keepAlive: true });
  const target = { ...parseHostPort(o.faceService, 80), agent };
  const countProxied = (status: number) =>
    metrics.requests.inc({ workload: "faces-gui", kind: "proxy", code: String(status) });

  const server = http.createServer(async (req, res) => {
    res.setHeader("x-faces-pod", o.pod);
    const url = req.url ?? "/";
    const path = url.split("?")[0] ?? "/";
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "content-type": "text/plain" }).end("GET only\n");
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (path.startsWith("/face/")) {
      await delayRequest(o.delayBuckets);
      if (shouldFail(o.errorFraction)) {
        res
          .writeHead(500, { "content-type": "application/json" })
          .end('{"error":"faces-gui failed on purpose"}');
        return;
      }
      proxyToFace(target, req, res, url.slice("/face".length), countProxied);
      return;
    }
    const asset = assets.get(path);
    if (!asset) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, {
      "content-type": asset.type,
      "content-length": asset.body.length,
      "cache-control": "no-cache",
    });
    res.end(req.method === "HEAD" ? undefined : asset.body);
    metrics.requests.inc({ workload: "faces-gui", kind: "page", code: "200" });
  });
  server.keepAliveTimeout = 65_000;

  const port = await listen(server, o.port, o.host);
  const metricsServer = await startMetricsServer(metrics.registry, o.metricsPort, o.host);
  o.logger.info({ port, metricsPort: metricsServer.port, faceService: o.faceService }, "faces-gui listening");
  return {
    port,
    metricsPort: metricsServer.port,
    close: async () => {
      await Promise.all([closeServer(server), metricsServer.close()]);
      agent.destroy();
    },
  };
}
