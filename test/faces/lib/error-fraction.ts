// ERROR_FRACTION: the percentage (0–100) of requests that fail on purpose.

export function parseErrorFraction(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === "") return 0;
  const text = raw.trim().replace(/%$/, "");
  const percent = Number(text);
  if (text === "" || !Number.isFinite(percent) || percent < 0 || percent > 100) {
    throw new Error(`ERROR_FRACTION: "${raw}" is not a percentage between 0 and 100`);
  }
  return percent;
}

/** True for about `percent` % of calls: never at 0, always at 100. */
export function shouldFail(percent: number, random: () => number = Math.random): boolean {
  return random() * 100 < percent;
}
