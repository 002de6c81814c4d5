// Pod volumes, materialised under <stateDir>/pods/<uid>/volumes/<name> and
// bind-mounted into each container's private mount namespace at start
// (see launch.ts). Supported: emptyDir, hostPath, configMap, secret,
// downwardAPI, projected (serviceAccountToken, configMap, secret,
// downwardAPI). ServiceAccount tokens come from the TokenRequest API, bound to
// the pod, and are refreshed at 80 % of their lifetime (at most every 24 h),
// as kubelet's token manager does. ConfigMap/Secret-backed content is
// re-read every minute; files are replaced by rename inside the volume
// directory, which running containers see through their bind mount of it.
import { mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, normalize, relative } from "node:path";
import type { Logger } from "pino";
import type { NodeConfig } from "./config.ts";
import {
  type NodeAllocatable,
  type PodRuntimeFacts,
  resolveFieldRef,
  resolveResourceFieldRef,
} from "./downward-api.ts";
import { nodeHostPaths, resolveHostPath } from "./host-paths.ts";
import type {
  ConfigMap,
  DownwardAPIVolumeFile,
  KeyToPath,
  Pod,
  Secret,
  TokenRequest,
  Volume,
  VolumeProjection,
} from "./k8s-types.ts";
import { isStatus, type KubeApi } from "./kube-api.ts";

export class VolumeError extends Error {
  override readonly name = "VolumeError";
}

type FileContent = { data: Buffer; mode: number };
type Files = Map<string, FileContent>;

const REFRESH_MS = 60_000;
const DAY_MS = 24 * 3600_000;

/** When a token issued for `expirationSeconds`, expiring at `expiresAt`, must be renewed. */
export function tokenRefreshAt(expiresAt: Date, expirationSeconds: number): Date {
  const ttlMs = expirationSeconds * 1000;
  const issuedAt = expiresAt.getTime() - ttlMs;
  return new Date(Math.min(issuedAt + 0.8 * ttlMs, issuedAt + DAY_MS));
}

/** A relative path inside a volume; rejects absolute paths and `..`. */
export function safeVolumePath(p: string): string {
  const n = normalize(p);
  if (p.startsWith("/") || n === ".." || n.startsWith("../") || n.split("/").includes("..")) {
    throw new VolumeError(`invalid path ${p} in volume`);
  }
  return n;
}

function keyFiles(
  data: Record<string, Buffer>,
  items: KeyToPath[] | undefined,
  mode: number,
  what: string,
  optional: boolean,
): Files {
  const files: Files = new Map();
  if (items?.length) {
    for (const item of items) {
      const d = data[item.key];
      if (d === undefined) {
        if (optional) continue;
        throw new VolumeError(`configuration key ${item.key} not found in ${what}`);
      }
      files.set(safeVolumePath(item.path), { data: d, mode: item.mode ?? mode });
    }
  } else {
    for (const [k, d] of Object.entries(data)) files.set(safeVolumePath(k), { data: d, mode });
  }
  return files;
}

type TokenEntry = { token: string; refreshAt: Date };

export type VolumeContext = {
  api: KubeApi;
  cfg: NodeConfig;
  log: Logger;
  allocatable: NodeAllocatable;
  facts: () => PodRuntimeFacts;
};

export class PodVolumes {
  #pod: Pod;
  readonly #ctx: VolumeContext;
  readonly #root: string;
  readonly #tokens = new Map<string, TokenEntry>();
  readonly #written = new Map<string, Set<string>>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(pod: Pod, ctx: VolumeContext) {
    this.#pod = pod;
    this.#ctx = ctx;
    this.#root = podStateDir(ctx.cfg, pod.metadata.uid ?? "");
  }

  update(pod: Pod): void {
    this.#pod = pod;
  }

  /** Host directory (or file, for hostPath) that backs a volume. */
  sourceOf(volumeName: string): string | undefined {
    const v = (this.#pod.spec.volumes ?? []).find((x) => x.name === volumeName);
    if (!v) return undefined;
    if (v.hostPath) return this.#nodePath(v.hostPath.path);
    return join(this.#root, "volumes", volumeName);
  }

  /** Materialises every volume; throws VolumeError (reported as FailedMount) on failure. */
  async setUp(): Promise<void> {
    for (const v of this.#pod.spec.volumes ?? []) await this.#setUpVolume(v);
    this.#schedule();
  }

  async tearDown(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await rm(this.#root, { recursive: true, force: true });
  }

  stop(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    let delay = REFRESH_MS;
    for (const t of this.#tokens.values()) delay = Math.min(delay, t.refreshAt.getTime() - Date.now());
    this.#timer = setTimeout(() => void this.#refresh(), Math.max(1000, delay));
  }

  async #refresh(): Promise<void> {
    for (const v of this.#pod.spec.volumes ?? []) {
      if (this.#closed) return;
      if (v.emptyDir || v.hostPath) continue;
      try {
        await this.#setUpVolume(v);
      } catch (err) {
        this.#ctx.log.warn({ volume: v.name, err: String(err) }, "volume refresh failed");
      }
    }
    this.#schedule();
  }

  async #setUpVolume(v: Volume): Promise<void> {
    const dir = join(this.#root, "volumes", v.name);
    if (v.hostPath) return this.#hostPath(this.#nodePath(v.hostPath.path), v.hostPath.type ?? "");
    await mkdir(dir, { recursive: true });
    if (v.emptyDir) return;
    let files: Files;
    if (v.configMap) {
      const src = v.configMap;
      const cm = await this.#configMap(src.name, src.optional ?? false);
      files = keyFiles(cmData(cm), src.items, src.defaultMode ?? 0o644, `ConfigMap ${src.name}`, !cm);
    } else if (v.secret) {
      const src = v.secret;
      const s = await this.#secret(src.secretName, src.optional ?? false);
      files = keyFiles(secretData(s), src.items, src.defaultMode ?? 0o644, `Secret ${src.secretName}`, !s);
    } else if (v.downwardAPI) {
      files = this.#downward(v.downwardAPI.items ?? [], v.downwardAPI.defaultMode ?? 0o644);
    } else if (v.projected) {
      files = new Map();
      const mode = v.projected.defaultMode ?? 0o644;
      for (const src of v.projected.sources ?? []) {
        for (const [p, c] of await this.#projection(src, mode)) files.set(p, c);
      }
    } else {
      const kind = Object.keys(v).find((k) => k !== "name") ?? "unknown";
      throw new VolumeError(`volume ${v.name}: type ${kind} is not supported by the node simulator`);
    }
    await this.#writeFiles(v.name, dir, files);
  }

  #nodePath(path: string): string {
    return resolveHostPath(nodeHostPaths(this.#ctx.cfg.stateDir), path);
  }

  async #hostPath(path: string, type: string): Promise<void> {
    const info = await stat(path).catch(() => undefined);
    switch (type) {
      case "DirectoryOrCreate":
        if (!info) await mkdir(path, { recursive: true, mode: 0o755 });
        return;
      case "FileOrCreate":
        if (!info) {
          await mkdir(dirname(path), { recursive: true });
          await writeFile(path, "", { flag: "a" });
        }
        return;
      case "Directory":
        if (!info?.isDirectory()) throw new VolumeError(`hostPath ${path} is not a directory`);
        return;
      case "File":
        if (!info?.isFile()) throw new VolumeError(`hostPath ${path} is not a file`);
        return;
      case "Socket":
        if (!info?.isSocket()) throw new VolumeError(`hostPath ${path} is not a socket`);
        return;
      case "":
        // no checks; a missing source becomes a directory, as containerd makes it
        if (!info) await mkdir(path, { recursive: true, mode: 0o755 });
        return;
      default:
        if (!info) throw new VolumeError(`hostPath ${path} (type ${type}) does not exist`);
    }
  }

  async #projection(src: VolumeProjection, mode: number): Promise<Files> {
    if (src.serviceAccountToken) {
      const t = src.serviceAccountToken;
      const token = await this.#token(t.audience ?? "", t.expirationSeconds ?? 3600);
      return new Map([[safeVolumePath(t.path), { data: Buffer.from(token), mode }]]);
    }
    if (src.configMap) {
      const cm = await this.#configMap(src.configMap.name, src.configMap.optional ?? false);
      return keyFiles(cmData(cm), src.configMap.items, mode, `ConfigMap ${src.configMap.name}`, !cm);
    }
    if (src.secret) {
      const s = await this.#secret(src.secret.name, src.secret.optional ?? false);
      return keyFiles(secretData(s), src.secret.items, mode, `Secret ${src.secret.name}`, !s);
    }
    if (src.downwardAPI) return this.#downward(src.downwardAPI.items ?? [], mode);
    throw new VolumeError(`projected source ${Object.keys(src).join(",")} is not supported`);
  }

  #downward(items: DownwardAPIVolumeFile[], mode: number): Files {
    const files: Files = new Map();
    for (const item of items) {
      let value: string | undefined;
      if (item.fieldRef) {
        value = resolveFieldRef(this.#pod, item.fieldRef, this.#ctx.facts());
        if (value === undefined) throw new VolumeError(`unsupported fieldRef ${item.fieldRef.fieldPath}`);
      } else if (item.resourceFieldRef) {
        const c = this.#pod.spec.containers.find((x) => x.name === item.resourceFieldRef?.containerName);
        value = resolveResourceFieldRef(c, item.resourceFieldRef, this.#ctx.allocatable);
      }
      files.set(safeVolumePath(item.path), { data: Buffer.from(value ?? ""), mode: item.mode ?? mode });
    }
    return files;
  }

  async #configMap(name: string, optional: boolean): Promise<ConfigMap | undefined> {
    const ns = this.#pod.metadata.namespace ?? "default";
    try {
      return await this.#ctx.api.get<ConfigMap>(`/api/v1/namespaces/${ns}/configmaps/${name}`);
    } catch (err) {
      if (isStatus(err, 404) && optional) return undefined;
      if (isStatus(err, 404)) throw new VolumeError(`configmap "${name}" not found`);
      throw err;
    }
  }

  async #secret(name: string, optional: boolean): Promise<Secret | undefined> {
    const ns = this.#pod.metadata.namespace ?? "default";
    try {
      return await this.#ctx.api.get<Secret>(`/api/v1/namespaces/${ns}/secrets/${name}`);
    } catch (err) {
      if (isStatus(err, 404) && optional) return undefined;
      if (isStatus(err, 404)) throw new VolumeError(`secret "${name}" not found`);
      throw err;
    }
  }

  async #token(audience: string, expirationSeconds: number): Promise<string> {
    const key = `${audience}|${expirationSeconds}`;
    const cached = this.#tokens.get(key);
    if (cached && cached.refreshAt.getTime() > Date.now()) return cached.token;
    const { metadata, spec } = this.#pod;
    const sa = spec.serviceAccountName || "default";
    const body: TokenRequest = {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        ...(audience ? { audiences: [audience] } : {}),
        expirationSeconds,
        boundObjectRef: { apiVersion: "v1", kind: "Pod", name: metadata.name ?? "", uid: metadata.uid ?? "" },
      },
    };
    const tr = await this.#ctx.api.request<TokenRequest>(
      "POST",
      `/api/v1/namespaces/${metadata.namespace}/serviceaccounts/${sa}/token`,
      { body },
    );
    if (!tr.status?.token) throw new VolumeError(`TokenRequest for ${sa} returned no token`);
    const refreshAt = tokenRefreshAt(
      new Date(tr.status.expirationTimestamp),
      tr.spec.expirationSeconds ?? expirationSeconds,
    );
    this.#tokens.set(key, { token: tr.status.token, refreshAt });
    this.#ctx.log.debug(
      { serviceAccount: sa, audience, refreshAt: refreshAt.toISOString() },
      "service account token issued",
    );
    return tr.status.token;
  }

  async #writeFiles(volume: string, dir: string, files: Files): Promise<void> {
    const previous = this.#written.get(volume) ?? new Set(await listFiles(dir));
    for (const [rel, content] of files) {
      const target = join(dir, rel);
      await mkdir(dirname(target), { recursive: true });
      const tmp = join(dirname(target), `.${rel.replace(/\//g, "_")}.tmp`);
      await writeFile(tmp, content.data, { mode: content.mode });
      await rename(tmp, target);
    }
    for (const old of previous) {
      if (!files.has(old)) await rm(join(dir, old), { force: true });
    }
    this.#written.set(volume, new Set(files.keys()));
  }
}

function cmData(cm: ConfigMap | undefined): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(cm?.data ?? {})) out[k] = Buffer.from(v);
  for (const [k, v] of Object.entries(cm?.binaryData ?? {})) out[k] = Buffer.from(v, "base64");
  return out;
}

function secretData(s: Secret | undefined): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(s?.data ?? {})) out[k] = Buffer.from(v, "base64");
  return out;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

export function podStateDir(cfg: NodeConfig, uid: string): string {
  return join(cfg.stateDir, "pods", uid);
}

export function podLogDir(cfg: NodeConfig, pod: Pod): string {
  return join(cfg.stateDir, "pods", `${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid}`);
}
