// gRPC wire details the agent needs when it answers on its own: status codes,
// the grpc-timeout header and the percent-encoding of grpc-message.

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

const TIMEOUT_UNIT_MS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

const TIMEOUT_RE = /^(\d{1,8})([HMSmun])$/;

/**
 * Milliseconds from a grpc-timeout header ("TimeoutValue TimeoutUnit", at most
 * 8 digits). A malformed value is ignored (undefined) rather than failing the
 * call: the spec leaves this to the server, and the backend sees it anyway.
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = TIMEOUT_RE.exec(value);
  if (m === null) return undefined;
  return Number(m[1]) * (TIMEOUT_UNIT_MS[m[2] as string] as number);
}

/** The grpc-timeout header for a remaining budget, in the coarsest exact-enough unit. */
export function formatGrpcTimeout(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  // 8 digits of milliseconds is ~27 hours; beyond that seconds are precise enough.
  return whole < 100_000_000 ? `${whole}m` : `${Math.min(99_999_999, Math.ceil(whole / 1000))}S`;
}

const HEX = "0123456789ABCDEF";

/**
 * Percent-encodes grpc-message per the gRPC HTTP/2 spec: the UTF-8 bytes outside
 * 0x20–0x7E, and '%' itself, become %XX. This is not encodeURIComponent, which
 * would also escape spaces and punctuation that the spec leaves alone.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  const bytes = Buffer.from(message, "utf8");
  let out = "";
  for (const b of bytes) {
    if (b >= 0x20 && b <= 0x7e && b !== 0x25) out += String.fromCharCode(b);
    else out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/** Inverse of encodeGrpcMessage; malformed escapes are kept as they are. */
export function decodeGrpcMessage(encoded: string): string {
  if (!encoded.includes("%")) return encoded;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded.charCodeAt(i);
    const hex = c === 0x25 ? Number.parseInt(encoded.slice(i + 1, i + 3), 16) : Number.NaN;
    if (!Number.isNaN(hex) && /^[0-9A-Fa-f]{2}$/.test(encoded.slice(i + 1, i + 3))) {
      bytes.push(hex);
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      bytes.push(...Buffer.from(String.fromCharCode(c), "utf8"));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}
