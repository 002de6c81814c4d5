// Small helpers so status messages read as English.

/** "an HTTPRoute", "a GRPCRoute". */
export function article(kind: string): string {
  return `${/^[AEIOUH]/.test(kind) ? "an" : "a"} ${kind}`;
}
