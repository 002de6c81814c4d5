// Puts the shim on a node: the executable into the CNI bin dir, our entry
// into the primary conflist; and takes both away again. Every write is a temp
// file renamed into place, so the runtime never reads a half-written file.

import {
  closeSync,
  copyFileSync,
  existsSync,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { isSupportedVersion } from "./cni-result.ts";
import {
  conflistFromConf,
  conflistNameFor,
  formatJson,
  hasConfigExtension,
  isConflist,
  isJsonObject,
  type JsonObject,
  pickPrimaryConfig,
  RESTORE_KEY,
  SHIM_TYPE,
  withoutShim,
  withShim,
} from "./conflist.ts";
import { DEFAULT_SETTINGS, type ShimSettings } from "./net-conf.ts";

export const SHIM_BINARY = "trellis-cni";

export interface InstallOptions {
  cniBinDir: string;
  cniNetDir: string;
  /** The executable to install (the running SEA, or a build output when run from source). */
  source: string;
  settings?: Partial<ShimSettings>;
}

export interface InstallReport {
  binary: string;
  config: string;
  /** False when the config already held exactly this entry and was left untouched. */
  configChanged: boolean;
  /** A single-plugin config that was turned into the conflist above. */
  convertedFrom?: string;
}

export interface UninstallReport {
  binaryRemoved: boolean;
  /** Config files our entry was removed from (or restored from). */
  configs: string[];
  /** Sandboxes whose cached CNI results name the shim; while any remain, the binary stays. */
  sandboxesLeft: number;
}

/** Where install/uninstall fail for a reason the operator has to fix. */
export class InstallError extends Error {}

function tempPath(target: string): string {
  // Hidden and without a config extension, so a runtime scanning the dir never picks it up.
  return join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
}

/** Fills a temp file beside the target, makes it durable, then renames it over the target. */
function replaceAtomic(target: string, fill: (tmp: string) => void, mode: number): void {
  const tmp = tempPath(target);
  try {
    fill(tmp);
    const fd = openSync(tmp, "r+");
    try {
      // Explicit mode, not the umask's or the source's (e.g. a read-only build store).
      fchmodSync(fd, mode);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

function writeAtomic(target: string, text: string, mode: number): void {
  replaceAtomic(target, (tmp) => writeFileSync(tmp, text), mode);
}

function copyAtomic(source: string, target: string): void {
  replaceAtomic(target, (tmp) => copyFileSync(source, tmp), 0o755);
}

function readJsonObject(path: string): JsonObject {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new InstallError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!isJsonObject(doc)) throw new InstallError(`${path} is not a JSON object`);
  return doc;
}

export function shimEntry(settings: Partial<ShimSettings> = {}): JsonObject {
  const s = { ...DEFAULT_SETTINGS, ...settings };
  const entry: JsonObject = {
    type: SHIM_TYPE,
    socketPath: s.socketPath,
    capturedNamespacesFile: s.capturedNamespacesFile,
    timeoutSeconds: s.timeoutSeconds,
    uncapturedTimeoutSeconds: s.uncapturedTimeoutSeconds,
    logLevel: s.logLevel,
  };
  if (s.logFile !== undefined) entry.logFile = s.logFile;
  return entry;
}

function configNames(dir: string): string[] {
  return readdirSync(dir).filter(hasConfigExtension);
}

export function install(o: InstallOptions): InstallReport {
  if (!existsSync(o.source)) throw new InstallError(`source executable ${o.source} does not exist`);
  if (!existsSync(o.cniNetDir)) throw new InstallError(`CNI config dir ${o.cniNetDir} does not exist`);
  const primary = pickPrimaryConfig(configNames(o.cniNetDir));
  if (primary === undefined)
    throw new InstallError(
      `no CNI network config in ${o.cniNetDir}: install Trellis after the primary CNI plugin`,
    );
  const primaryPath = join(o.cniNetDir, primary);
  const doc = readJsonObject(primaryPath);
  if (!isSupportedVersion(doc.cniVersion))
    throw new InstallError(
      `${primaryPath} has cniVersion ${JSON.stringify(doc.cniVersion)}, which trellis-cni does not support`,
    );

  // The binary first: a conflist naming a plugin the runtime cannot find would fail every pod.
  mkdirSync(o.cniBinDir, { recursive: true });
  const binary = join(o.cniBinDir, SHIM_BINARY);
  copyAtomic(o.source, binary);

  const entry = shimEntry(o.settings);
  const mode = statSync(primaryPath).mode & 0o777;
  if (isConflist(doc)) {
    const text = formatJson(withShim(doc, entry));
    const changed = readFileSync(primaryPath, "utf8") !== text;
    // Untouched when equal: runtimes watch this dir and reload on every write.
    if (changed) writeAtomic(primaryPath, text, mode);
    return { binary, config: primaryPath, configChanged: changed };
  }
  const target = conflistNameFor(primary);
  if (existsSync(join(o.cniNetDir, target)))
    throw new InstallError(`cannot convert ${primary}: ${target} already exists in ${o.cniNetDir}`);
  if (pickPrimaryConfig([...configNames(o.cniNetDir).filter((n) => n !== primary), target]) !== target)
    throw new InstallError(
      `cannot convert ${primary}: ${target} would not be the primary config in ${o.cniNetDir}`,
    );
  const conflist = withShim(conflistFromConf(doc), { ...entry, [RESTORE_KEY]: primary });
  const targetPath = join(o.cniNetDir, target);
  writeAtomic(targetPath, formatJson(conflist), mode);
  rmSync(primaryPath);
  return { binary, config: targetPath, configChanged: true, convertedFrom: primaryPath };
}

/**
 * Sandboxes the runtime set up through the shim: their cached results name it,
 * and the runtime runs the cached chain at teardown. Removing the binary under
 * them would fail their CNI DEL ("failed to find plugin") and leave pods stuck.
 */
export function sandboxesUsingShim(cniCacheDir: string): number {
  if (!existsSync(cniCacheDir)) return 0;
  let n = 0;
  for (const name of readdirSync(cniCacheDir)) {
    try {
      // libcni's cache record (cniCacheV1) holds the network config base64-encoded.
      const record = JSON.parse(readFileSync(join(cniCacheDir, name), "utf8")) as { config?: unknown };
      if (typeof record.config !== "string") continue;
      const config = JSON.parse(Buffer.from(record.config, "base64").toString("utf8")) as {
        plugins?: unknown;
      };
      if (
        Array.isArray(config.plugins) &&
        config.plugins.some((p) => (p as { type?: unknown })?.type === SHIM_BINARY)
      )
        n++;
    } catch {
      // gone meanwhile, or a directory
    }
  }
  return n;
}

export function uninstall(o: {
  cniBinDir: string;
  cniNetDir: string;
  cniCacheDir?: string;
}): UninstallReport {
  const configs: string[] = [];
  if (existsSync(o.cniNetDir)) {
    for (const name of configNames(o.cniNetDir).sort()) {
      const path = join(o.cniNetDir, name);
      let doc: JsonObject;
      try {
        doc = readJsonObject(path);
      } catch {
        continue; // not ours to judge; uninstall only edits files holding our entry
      }
      if (!isConflist(doc)) continue;
      const out = withoutShim(doc);
      if (out.removed === 0) continue;
      const mode = statSync(path).mode & 0o777;
      const plugins = out.conflist.plugins as JsonObject[];
      if (out.restoreConf !== undefined && !existsSync(join(o.cniNetDir, out.restoreConf))) {
        writeAtomic(join(o.cniNetDir, out.restoreConf), formatJson(plugins[0] as JsonObject), mode);
        rmSync(path);
      } else {
        writeAtomic(path, formatJson(out.conflist), mode);
      }
      configs.push(path);
    }
  }
  const binary = join(o.cniBinDir, SHIM_BINARY);
  const sandboxesLeft = o.cniCacheDir === undefined ? 0 : sandboxesUsingShim(o.cniCacheDir);
  const binaryRemoved = existsSync(binary) && sandboxesLeft === 0;
  if (sandboxesLeft === 0) rmSync(binary, { force: true });
  return { binaryRemoved, configs, sandboxesLeft };
}
