// Editing the node's CNI network config as data: which file the runtime uses,
// and the conflist with and without our entry. File access lives in
// installer.ts; everything here is pure.

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export const SHIM_TYPE = "trellis-cni";

/**
 * Set on our entry when install had to turn a single-plugin `.conf` into a
 * conflist: uninstall writes that file back, so the node ends as it began.
 */
export const RESTORE_KEY = "restoreConfOnUninstall";

/** The extensions libcni's ConfFiles accepts, as containerd and CRI-O load them. */
export const CONFIG_EXTENSIONS = [".conf", ".conflist", ".json"] as const;

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function hasConfigExtension(name: string): boolean {
  return CONFIG_EXTENSIONS.some((ext) => name.endsWith(ext));
}

/**
 * The runtime uses the first config file in byte order (Go's sort.Strings);
 * that one is the node's primary network, the one our entry must be in.
 */
export function pickPrimaryConfig(names: readonly string[]): string | undefined {
  return names
    .filter(hasConfigExtension)
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .at(0);
}

/** `.json` may hold either shape; a conflist is whatever has a plugins array. */
export function isConflist(doc: JsonObject): boolean {
  return Array.isArray(doc.plugins);
}

export function isShimEntry(p: Json | undefined): boolean {
  return isJsonObject(p) && p.type === SHIM_TYPE;
}

function pluginsOf(conflist: JsonObject): Json[] {
  const p = conflist.plugins;
  return Array.isArray(p) ? p : [];
}

/**
 * Our entry goes last (it must see the final prevResult). An entry already
 * there is replaced where it stands, keeping its restore marker, and any
 * duplicates go: installing again changes nothing but the settings.
 */
export function withShim(conflist: JsonObject, entry: JsonObject): JsonObject {
  const plugins = pluginsOf(conflist);
  const at = plugins.findIndex(isShimEntry);
  if (at < 0) return { ...conflist, plugins: [...plugins, entry] };
  const old = plugins[at] as JsonObject;
  const marker = old[RESTORE_KEY];
  const replacement =
    marker !== undefined && entry[RESTORE_KEY] === undefined ? { ...entry, [RESTORE_KEY]: marker } : entry;
  return {
    ...conflist,
    plugins: plugins.flatMap((p, i) => (i === at ? [replacement] : isShimEntry(p) ? [] : [p])),
  };
}

export interface WithoutShim {
  conflist: JsonObject;
  removed: number;
  /** File name of the `.conf` this conflist was made from, when it should be written back. */
  restoreConf: string | undefined;
}

export function withoutShim(conflist: JsonObject): WithoutShim {
  const plugins = pluginsOf(conflist);
  const ours = plugins.filter(isShimEntry) as JsonObject[];
  if (ours.length === 0) return { conflist, removed: 0, restoreConf: undefined };
  const rest = plugins.filter((p) => !isShimEntry(p));
  const marker = ours.map((e) => e[RESTORE_KEY]).find((m) => typeof m === "string");
  // Only a conflist still holding exactly the converted plugin goes back to being a .conf.
  const restoreConf =
    typeof marker === "string" && rest.length === 1 && isJsonObject(rest[0]) ? marker : undefined;
  return { conflist: { ...conflist, plugins: rest }, removed: ours.length, restoreConf };
}

/**
 * As libcni's ConfListFromConf: the whole single-plugin config becomes the
 * one plugin, so nothing of it is lost and it can be written back verbatim.
 */
export function conflistFromConf(conf: JsonObject): JsonObject {
  const head: JsonObject = {};
  if (conf.cniVersion !== undefined) head.cniVersion = conf.cniVersion;
  if (conf.name !== undefined) head.name = conf.name;
  return { ...head, plugins: [conf] };
}

/** Name of the conflist that replaces a converted `.conf` (same stem, so it sorts in the same place). */
export function conflistNameFor(confName: string): string {
  return `${confName.replace(/\.(conf|json)$/, "")}.conflist`;
}

export function formatJson(doc: Json): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
