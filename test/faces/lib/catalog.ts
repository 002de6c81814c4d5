// The faces' vocabulary: smiley names → HTML entities and colour names → hex,
// per FACES.md. Lookups both ways so face can name what it received.

export const SMILEYS = {
  Grinning: "&#x1F603;",
  HeartEyes: "&#x1F60D;",
  RollingEyes: "&#x1F644;",
  Sleeping: "&#x1F634;",
  Cursing: "&#x1F92C;",
} as const satisfies Record<string, string>;

export type SmileyName = keyof typeof SMILEYS;

export const COLORS = {
  blue: "#66CCEE",
  green: "#228833",
  darkblue: "#4477AA",
  grey: "#BBBBBB",
  red: "#EE6677",
  purple: "#AA3377",
  yellow: "#CCBB44",
} as const satisfies Record<string, string>;

export type ColorName = keyof typeof COLORS;

export const DEFAULT_SMILEY: SmileyName = "Grinning";
export const DEFAULT_COLOR: ColorName = "blue";

export function isSmileyName(name: string): name is SmileyName {
  return Object.hasOwn(SMILEYS, name);
}

export function isColorName(name: string): name is ColorName {
  return Object.hasOwn(COLORS, name);
}

/** "&#x1F603;" → "Grinning"; undefined for an entity not in the catalog. */
export function smileyNameOf(entity: string): SmileyName | undefined {
  for (const [name, e] of Object.entries(SMILEYS))
    if (e.toLowerCase() === entity.toLowerCase()) return name as SmileyName;
  return undefined;
}

/** "#66ccee" → "blue"; undefined for a colour not in the palette. */
export function colorNameOf(hex: string): ColorName | undefined {
  for (const [name, h] of Object.entries(COLORS))
    if (h.toLowerCase() === hex.toLowerCase()) return name as ColorName;
  return undefined;
}
