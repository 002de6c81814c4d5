// One string order for everything that must serialise deterministically:
// plain UTF-16 code unit order, independent of locale.
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
