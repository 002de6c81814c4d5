// Header modifiers (RequestHeaderModifier / ResponseHeaderModifier), applied in
// the order the contract fixes: set, add, remove. Names compare
// case-insensitively. Two representations are supported because HTTP/1 keeps
// headers as a flat [name, value, ...] list (original case, duplicates kept)
// and HTTP/2 as an object with lower-case keys.

import type { HeaderModifier } from "@trellis/api";

export interface CompiledHeaderModifier {
  readonly set: readonly (readonly [string, string])[];
  readonly add: readonly (readonly [string, string])[];
  readonly remove: readonly string[];
}

export type HeaderObject = Record<string, string | string[] | undefined>;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** RFC 9110 field-name. */
export function isHeaderName(name: string): boolean {
  return TOKEN.test(name);
}

/** RFC 9110 field-value: visible ASCII, obs-text, spaces and tabs; never CR, LF or NUL. */
export function isHeaderValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

/**
 * Null when the modifier does nothing, so the hot path can skip it with one
 * check. Throws on names or values that could not be written as a header
 * (the HTTP/1.1 path writes them verbatim).
 */
export function compileHeaderModifier(mod: HeaderModifier | undefined): CompiledHeaderModifier | null {
  if (mod === undefined) return null;
  if (mod.set.length === 0 && mod.add.length === 0 && mod.remove.length === 0) return null;
  for (const h of [...mod.set, ...mod.add]) {
    if (!isHeaderName(h.name)) throw new Error(`invalid header name ${JSON.stringify(h.name)}`);
    if (!isHeaderValue(h.value)) throw new Error(`invalid value for header ${h.name}`);
  }
  return {
    set: mod.set.map((h) => [h.name.toLowerCase(), h.value] as const),
    add: mod.add.map((h) => [h.name.toLowerCase(), h.value] as const),
    remove: mod.remove.map((n) => n.toLowerCase()),
  };
}

/** Removes every entry named `lower` and returns their values joined with ",", or undefined. */
function takeAll(list: string[], lower: string): string | undefined {
  let joined: string | undefined;
  let w = 0;
  for (let r = 0; r < list.length; r += 2) {
    const name = list[r] as string;
    const value = list[r + 1] as string;
    if (name.length === lower.length && name.toLowerCase() === lower) {
      joined = joined === undefined ? value : `${joined},${value}`;
    } else {
      list[w] = name;
      list[w + 1] = value;
      w += 2;
    }
  }
  list.length = w;
  return joined;
}

/** Applies `mod` to a flat header list in place. */
export function applyToList(list: string[], mod: CompiledHeaderModifier): void {
  for (const [name, value] of mod.set) {
    takeAll(list, name);
    list.push(name, value);
  }
  for (const [name, value] of mod.add) {
    const old = takeAll(list, name);
    list.push(name, old === undefined ? value : `${old},${value}`);
  }
  for (const name of mod.remove) takeAll(list, name);
}

/** Applies `mod` to a header object with lower-case keys, in place. */
export function applyToObject(obj: HeaderObject, mod: CompiledHeaderModifier): void {
  for (const [name, value] of mod.set) obj[name] = value;
  for (const [name, value] of mod.add) {
    const old = obj[name];
    const joined = Array.isArray(old) ? old.join(",") : old;
    obj[name] = joined === undefined ? value : `${joined},${value}`;
  }
  for (const name of mod.remove) delete obj[name];
}

/** Lower-cases names and joins duplicates with ","; the common form the two representations are compared in. */
export function listToObject(list: readonly string[]): Record<string, string> {
  const obj: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) {
    const name = (list[i] as string).toLowerCase();
    const value = list[i + 1] as string;
    const old = obj[name];
    obj[name] = old === undefined ? value : `${old},${value}`;
  }
  return obj;
}

/** Value of a header in a flat list (case-insensitive), duplicates joined with ",". */
export function getFromList(list: readonly string[], lower: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i] as string;
    if (name.length === lower.length && name.toLowerCase() === lower) {
      out = out === undefined ? (list[i + 1] as string) : `${out},${list[i + 1] as string}`;
    }
  }
  return out;
}
