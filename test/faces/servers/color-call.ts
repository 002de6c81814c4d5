// face → color: ColorService/Center or /Edge on one long-lived channel, with
// x-faces-user metadata. No deadline, no retry. Any failure → grey.
import * as grpc from "@grpc/grpc-js";
import { COLORS, type ColorName, colorNameOf } from "../lib/catalog.ts";
import type { ColorClient } from "../lib/color-service.ts";
import { DEBUG_BACKEND_HEADER, DEBUG_ROUTE_HEADER, type Served } from "../lib/face-cell.ts";

export type ColorOutcome = {
  hex: string;
  name: ColorName | "Unknown";
  served: Served;
  /** Failures (this call's, or the errors the response listed). */
  errors: string[];
};

/** A metadata value from the response headers, else from the trailers. */
function pick(headers: grpc.Metadata, trailers: grpc.Metadata, key: string): string | undefined {
  const v = headers.get(key)[0] ?? trailers.get(key)[0];
  return v === undefined ? undefined : String(v);
}

export async function callColor(
  client: ColorClient,
  kind: "center" | "edge",
  cell: { row: number; column: number },
  user: string | undefined,
): Promise<ColorOutcome> {
  const started = performance.now();
  const md = new grpc.Metadata();
  if (user !== undefined) md.set("x-faces-user", user);
  const result = await client.call(kind === "center" ? "Center" : "Edge", cell, md);
  const served: Served = {
    status: grpc.status[result.ok ? grpc.status.OK : result.error.code] ?? "UNKNOWN",
    ms: Math.round(performance.now() - started),
  };
  const pod = pick(result.headers, result.trailers, "x-faces-pod");
  const route = pick(result.headers, result.trailers, DEBUG_ROUTE_HEADER);
  const backend = pick(result.headers, result.trailers, DEBUG_BACKEND_HEADER);
  if (pod !== undefined) served.pod = pod;
  if (route !== undefined) served.route = route;
  if (backend !== undefined) served.backend = backend;

  if (!result.ok) {
    return {
      hex: COLORS.grey,
      name: "grey",
      served,
      errors: [`color: ${served.status} ${result.error.details}`],
    };
  }
  const hex = result.response.color;
  if (hex === "") return { hex: COLORS.grey, name: "grey", served, errors: ["color: response has no color"] };
  return {
    hex,
    name: colorNameOf(hex) ?? "Unknown",
    served,
    errors: result.response.errors.map((e) => `color: ${e}`),
  };
}
