// Bytes and digests of node tables, built from their parts.
//
// Node tables share their parts: the Service, Backend and LocalPod messages
// are immutable objects that many tables (often all of them) hold by
// reference. A protobuf message is the concatenation of its fields, so a
// table's bytes are its parts' bytes with a tag and a length in front of each;
// encoding a part once and caching the bytes by object identity makes encoding
// a table a copy, and makes re-encoding a table whose parts did not change
// unnecessary.
//
// The digest of a table is likewise built from its parts (a hash of the parts'
// hashes, in order), cached per part and per list: equal contents give equal
// digests across processes, and a table that shares its lists with other
// tables costs a few hashes.
import { createHash } from "node:crypto";
import { AgentSettings, Backend, LocalPod, type NodeTable, Service, TableVersion } from "@trellis/api";

interface Encoder<T> {
  encode(message: T): { finish(): Uint8Array };
}

const bytesCache = new WeakMap<object, Uint8Array>();
const digestCache = new WeakMap<object, Buffer>();

function bytesOf<T extends object>(message: T, type: Encoder<T>): Uint8Array {
  let bytes = bytesCache.get(message);
  if (!bytes) {
    bytes = type.encode(message).finish();
    bytesCache.set(message, bytes);
  }
  return bytes;
}

function digestOf<T extends object>(message: T, type: Encoder<T>): Buffer {
  let digest = digestCache.get(message);
  if (!digest) {
    digest = createHash("sha256").update(bytesOf(message, type)).digest();
    digestCache.set(message, digest);
  }
  return digest;
}

function listDigest<T extends object>(list: readonly T[], type: Encoder<T>): Buffer {
  let digest = digestCache.get(list);
  if (!digest) {
    // One update over the concatenated part digests: far cheaper than one
    // update call per part for lists of thousands.
    digest = createHash("sha256")
      .update(Buffer.concat(list.map((item) => digestOf(item, type))))
      .digest();
    digestCache.set(list, digest);
  }
  return digest;
}

/** The encoded bytes of a Service message (cached; the object must not change afterwards). */
export function serviceBytes(service: Service): Uint8Array {
  return bytesOf(service, Service);
}

/** The encoded bytes of a Backend message (cached; the object must not change afterwards). */
export function backendBytes(backend: Backend): Uint8Array {
  return bytesOf(backend, Backend);
}

/**
 * A content digest of the table without its version (hex, 16 characters):
 * equal for tables with equal content, whichever process built them.
 */
export function tableDigest(table: NodeTable): string {
  const hash = createHash("sha256");
  hash.update(table.node);
  hash.update("\0");
  hash.update(table.settings ? AgentSettings.encode(table.settings).finish() : new Uint8Array());
  hash.update(listDigest(table.services, Service));
  hash.update(listDigest(table.backends, Backend));
  hash.update(listDigest(table.localPods, LocalPod));
  for (const ns of table.capturedNamespaces) hash.update(`${ns}\0`);
  return hash.digest("hex").slice(0, 16);
}

interface Field {
  tag: number;
  bytes: Uint8Array;
}

/** The table's top-level fields with their (cached) bytes, and the size of the encoded table. */
function tableFields(table: NodeTable): { fields: Field[]; size: number } {
  const fields: Field[] = [];
  if (table.version !== undefined)
    fields.push({ tag: 10, bytes: TableVersion.encode(table.version).finish() });
  if (table.node !== "") fields.push({ tag: 18, bytes: Buffer.from(table.node, "utf8") });
  if (table.settings !== undefined)
    fields.push({ tag: 26, bytes: AgentSettings.encode(table.settings).finish() });
  for (const s of table.services) fields.push({ tag: 34, bytes: bytesOf(s, Service) });
  for (const b of table.backends) fields.push({ tag: 42, bytes: bytesOf(b, Backend) });
  for (const p of table.localPods) fields.push({ tag: 50, bytes: bytesOf(p, LocalPod) });
  for (const ns of table.capturedNamespaces) fields.push({ tag: 58, bytes: Buffer.from(ns, "utf8") });
  let size = 0;
  for (const f of fields) size += 1 + varintSize(f.bytes.length) + f.bytes.length;
  return { fields, size };
}

function writeFields(out: Buffer, at: number, fields: readonly Field[]): number {
  for (const f of fields) {
    out[at++] = f.tag;
    at = writeVarint(out, at, f.bytes.length);
    out.set(f.bytes, at);
    at += f.bytes.length;
  }
  return at;
}

/**
 * The table's protobuf encoding, byte-identical to NodeTable.encode(table),
 * assembled from the cached bytes of its parts.
 */
export function encodeNodeTable(table: NodeTable): Uint8Array {
  const { fields, size } = tableFields(table);
  const out = Buffer.allocUnsafe(size);
  writeFields(out, 0, fields);
  return out;
}

/**
 * ControllerMessage{table_update: TableUpdate{table}} as the agent channel
 * sends it, byte-identical to ControllerMessage.encode, in one buffer built
 * from the table's cached parts (the generated encoder re-encodes every part
 * of every table, which costs tens of milliseconds per node at scale).
 */
export function encodeTableUpdateMessage(table: NodeTable): Buffer {
  const { fields, size } = tableFields(table);
  const update = 1 + varintSize(size) + size;
  const out = Buffer.allocUnsafe(1 + varintSize(update) + update);
  let at = 0;
  out[at++] = 10; // ControllerMessage.table_update, length-delimited
  at = writeVarint(out, at, update);
  out[at++] = 10; // TableUpdate.table, length-delimited
  at = writeVarint(out, at, size);
  writeFields(out, at, fields);
  return out;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}
