// Gateway API durations (GEP-2257): one to four components of 1–5 digits and a
// unit h, m, s or ms, read like Go's time.ParseDuration (so units may repeat
// and appear in any order; they add up).
const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const COMPONENT = /([0-9]{1,5})(ms|h|m|s)/g;
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

export type DurationResult =
  | { readonly ok: true; readonly ms: number }
  | { readonly ok: false; readonly message: string };

export function parseGatewayDuration(text: string): DurationResult {
  if (!DURATION.test(text)) {
    return {
      ok: false,
      message: `"${text}" is not a Gateway API duration: use 1 to 4 parts of up to 5 digits with unit h, m, s or ms, e.g. 300ms, 1m30s or 1h2m3s4ms (no fractions, no spaces)`,
    };
  }
  let ms = 0;
  for (const [, digits, unit] of text.matchAll(COMPONENT)) {
    ms += Number(digits) * (UNIT_MS[unit ?? "ms"] ?? 1);
  }
  return { ok: true, ms };
}
