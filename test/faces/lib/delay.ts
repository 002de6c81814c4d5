// DELAY_BUCKETS: a comma list of milliseconds; every request sleeps one of
// them, picked uniformly at random. Unset or empty means no delay.
import { setTimeout as sleep } from "node:timers/promises";

export type DelayBuckets = readonly number[];

export function parseDelayBuckets(raw: string | undefined): DelayBuckets {
  if (raw === undefined || raw.trim() === "") return [0];
  return raw.split(",").map((part) => {
    const text = part.trim();
    const ms = Number(text);
    if (text === "" || !Number.isFinite(ms) || ms < 0) {
      throw new Error(`DELAY_BUCKETS: "${part}" is not a non-negative number of milliseconds (in "${raw}")`);
    }
    return ms;
  });
}

export function pickDelay(buckets: DelayBuckets, random: () => number = Math.random): number {
  return buckets[Math.floor(random() * buckets.length)] ?? 0;
}

/** Sleeps one randomly picked bucket; resolves with the milliseconds slept. */
export async function delayRequest(buckets: DelayBuckets): Promise<number> {
  const ms = pickDelay(buckets);
  if (ms > 0) await sleep(ms);
  return ms;
}
