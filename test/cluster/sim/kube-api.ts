// A thin JSON client for the Kubernetes API, on node:https.
//
// Why not the generated client of @kubernetes/client-node: it (de)serialises
// timestamps into Date objects for typed calls, while its Watch hands out raw
// JSON, so one cache would hold two shapes of the same object. Pod status is
// written back whole (PUT with resourceVersion), which needs one faithful
// shape. We still use its KubeConfig to load credentials.

import type { IncomingMessage } from "node:http";
import https from "node:https";
import { createInterface } from "node:readline";
import { KubeConfig } from "@kubernetes/client-node";
import type { ApiStatus } from "./k8s-types.ts";

export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly body: string;
  constructor(method: string, path: string, status: number, body: string) {
    let reason = "";
    let message = body.slice(0, 300);
    try {
      const parsed = JSON.parse(body) as ApiStatus;
      reason = parsed.reason ?? "";
      message = parsed.message ?? message;
    } catch {
      // not a Status object: keep the raw body
    }
    super(`${method} ${path}: ${status} ${message}`);
    this.name = "KubeApiError";
    this.status = status;
    this.reason = reason;
    this.body = body;
  }
}

export function isStatus(err: unknown, ...codes: number[]): boolean {
  return err instanceof KubeApiError && codes.includes(err.status);
}

export type RequestOptions = {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
};

export type WatchOptions = {
  query: Record<string, string | number | boolean | undefined>;
  onEvent: (event: unknown) => void;
  signal: AbortSignal;
  /** Abort the watch when no bytes arrived for this long (bookmarks keep it alive). */
  idleTimeoutMs: number;
};

type Credentials = {
  server: URL;
  agent: https.Agent;
  headers: Record<string, string>;
};

export class KubeApi {
  readonly #creds: Credentials;

  private constructor(creds: Credentials) {
    this.#creds = creds;
  }

  static async fromKubeconfig(path: string): Promise<KubeApi> {
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error(`kubeconfig ${path} has no current cluster`);
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (typeof v === "string") headers[k] = v;
    }
    const agent = new https.Agent({
      keepAlive: true,
      maxSockets: 32,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      rejectUnauthorized: opts.rejectUnauthorized ?? true,
    });
    return new KubeApi({ server: new URL(cluster.server), agent, headers });
  }

  #url(path: string, query?: Record<string, string | number | boolean | undefined>): URL {
    const url = new URL(path, this.#creds.server);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    return url;
  }

  #open(method: string, url: URL, body: string | undefined, contentType: string, signal: AbortSignal) {
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = https.request(url, {
        method,
        agent: this.#creds.agent,
        headers: {
          ...this.#creds.headers,
          accept: "application/json",
          ...(body === undefined
            ? {}
            : { "content-type": contentType, "content-length": Buffer.byteLength(body) }),
        },
        signal,
      });
      req.on("response", resolve);
      req.on("error", reject);
      req.end(body);
    });
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const signal = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
    const res = await this.#open(
      method,
      this.#url(path, opts.query),
      body,
      opts.contentType ?? "application/json",
      signal,
    );
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw new KubeApiError(method, path, status, text);
    return (text === "" ? {} : JSON.parse(text)) as T;
  }

  get<T>(path: string, query?: RequestOptions["query"]): Promise<T> {
    return this.request<T>("GET", path, { query });
  }

  /**
   * Streams a watch until the server closes it (resolves) or it fails
   * (rejects with KubeApiError for non-200 answers, or the transport error).
   */
  async watch(path: string, opts: WatchOptions): Promise<void> {
    const ac = new AbortController();
    const onAbort = () => ac.abort(opts.signal.reason);
    opts.signal.addEventListener("abort", onAbort, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const resetIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(
        () => ac.abort(new Error(`watch idle for ${opts.idleTimeoutMs} ms`)),
        opts.idleTimeoutMs,
      );
    };
    try {
      resetIdle();
      const url = this.#url(path, { ...opts.query, watch: true });
      const res = await this.#open("GET", url, undefined, "", ac.signal);
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        for await (const chunk of res) chunks.push(chunk as Buffer);
        throw new KubeApiError("WATCH", path, res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"));
      }
      res.on("data", resetIdle);
      const lines = createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY });
      for await (const line of lines) {
        if (line.trim() === "") continue;
        opts.onEvent(JSON.parse(line));
      }
      if (ac.signal.aborted) throw ac.signal.reason;
    } finally {
      clearTimeout(idle);
      opts.signal.removeEventListener("abort", onAbort);
      ac.abort();
    }
  }

  close(): void {
    this.#creds.agent.destroy();
  }
}
