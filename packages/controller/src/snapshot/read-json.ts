// Defensive readers for Kubernetes JSON. Objects come from the API server or a
// user's YAML and may be anything; a wrong type becomes a FieldProblem and the
// field reads as absent, so one bad field never stops the whole snapshot.
import type { FieldProblem } from "./snapshot.ts";

export type JsonObject = Readonly<Record<string, unknown>>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `spec` + `ports` → `spec.ports`; the top level has no prefix. */
export function fieldPath(field: string, key: string): string {
  return field === "" ? key : `${field}.${key}`;
}

export function describeJsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${JSON.stringify(value)}`;
}

export function objectField(
  obj: JsonObject,
  key: string,
  field: string,
  problems: FieldProblem[],
): JsonObject | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (isJsonObject(value)) return value;
  problems.push({
    field: fieldPath(field, key),
    message: `must be an object, got ${describeJsonType(value)}`,
  });
  return undefined;
}

export function stringField(
  obj: JsonObject,
  key: string,
  field: string,
  problems: FieldProblem[],
): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  problems.push({
    field: fieldPath(field, key),
    message: `must be a string, got ${describeJsonType(value)}`,
  });
  return undefined;
}

export function integerField(
  obj: JsonObject,
  key: string,
  field: string,
  problems: FieldProblem[],
  range: { min: number; max: number },
): number | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number" && Number.isInteger(value) && value >= range.min && value <= range.max) {
    return value;
  }
  problems.push({
    field: fieldPath(field, key),
    message: `must be an integer from ${range.min} to ${range.max}, got ${describeJsonType(value)}`,
  });
  return undefined;
}

export function booleanField(
  obj: JsonObject,
  key: string,
  field: string,
  problems: FieldProblem[],
): boolean | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value === "boolean") return value;
  problems.push({
    field: fieldPath(field, key),
    message: `must be true or false, got ${describeJsonType(value)}`,
  });
  return undefined;
}

export function listField(
  obj: JsonObject,
  key: string,
  field: string,
  problems: FieldProblem[],
): readonly unknown[] {
  const value = obj[key];
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value;
  problems.push({ field: fieldPath(field, key), message: `must be a list, got ${describeJsonType(value)}` });
  return [];
}

/** Items of a list that are objects; other items become problems. */
export function objectListField(
  obj: JsonObject,
  key: string,
  field: string,
  problems: FieldProblem[],
): readonly { readonly item: JsonObject; readonly field: string }[] {
  const out: { item: JsonObject; field: string }[] = [];
  listField(obj, key, field, problems).forEach((item, index) => {
    const itemField = `${fieldPath(field, key)}[${index}]`;
    if (isJsonObject(item)) out.push({ item, field: itemField });
    else problems.push({ field: itemField, message: `must be an object, got ${describeJsonType(item)}` });
  });
  return out;
}

export function stringListField(
  obj: JsonObject,
  key: string,
  field: string,
  problems: FieldProblem[],
): readonly string[] {
  const out: string[] = [];
  listField(obj, key, field, problems).forEach((item, index) => {
    if (typeof item === "string") out.push(item);
    else
      problems.push({
        field: `${fieldPath(field, key)}[${index}]`,
        message: `must be a string, got ${describeJsonType(item)}`,
      });
  });
  return out;
}

export function stringMapField(
  obj: JsonObject,
  key: string,
  field: string,
  problems: FieldProblem[],
): Readonly<Record<string, string>> {
  const value = objectField(obj, key, field, problems);
  const out: Record<string, string> = {};
  if (!value) return out;
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === "string") out[k] = v;
    else
      problems.push({
        field: `${fieldPath(field, key)}.${k}`,
        message: `must be a string, got ${describeJsonType(v)}`,
      });
  }
  return out;
}

/**
 * Fields Trellis does not implement must not be ignored silently: each becomes
 * a problem that names it.
 */
export function reportUnsupportedFields(
  obj: JsonObject,
  supported: readonly string[],
  field: string,
  problems: FieldProblem[],
): void {
  for (const key of Object.keys(obj).sort()) {
    if (!supported.includes(key) && obj[key] !== undefined && obj[key] !== null) {
      problems.push({
        field: fieldPath(field, key),
        message: `is not supported by Trellis; remove it (supported here: ${supported.join(", ")})`,
      });
    }
  }
}
