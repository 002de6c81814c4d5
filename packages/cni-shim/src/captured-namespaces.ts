// The agent's last word on which namespaces are captured, kept in a file so
// the shim can still decide when the agent itself cannot answer.

import { readFile } from "node:fs/promises";

export type CapturedNamespaces =
  | { kind: "listed"; namespaces: ReadonlySet<string> }
  /** No file: this node never ran Trellis, or the agent has not written it yet. */
  | { kind: "absent" }
  /** Present but not readable or not the agent's format. */
  | { kind: "unusable"; reason: string };

export function parseCapturedNamespaces(text: string): CapturedNamespaces {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { kind: "unusable", reason: `not JSON: ${String(e)}` };
  }
  const list =
    typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>).namespaces : undefined;
  if (!Array.isArray(list) || !list.every((n) => typeof n === "string"))
    return { kind: "unusable", reason: "namespaces must be an array of strings" };
  return { kind: "listed", namespaces: new Set(list) };
}

export async function readCapturedNamespaces(path: string): Promise<CapturedNamespaces> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { kind: "absent" };
    return { kind: "unusable", reason: `cannot read ${path}: ${(e as Error).message}` };
  }
  return parseCapturedNamespaces(text);
}
