// The faces demo on the cluster-in-a-box: deploy it, find the GUI's host
// address, and ask faces-gui for cells the way the browser does. Used by the
// demo command and by the workshop's end-to-end tests.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { kubectl } from "../cluster/box.ts";
import { TRELLIS_ROOT } from "../cluster/layout.ts";
import { eventually } from "./eventually.ts";

export const FACES_NAMESPACE = "faces";
export const FACES_APP_DIR = join(TRELLIS_ROOT, "examples/faces/app");
export const FACES_ROUTES_DIR = join(TRELLIS_ROOT, "examples/faces/routes");
export const GUI_HOST_PORT = 30080;

export interface Cell {
  status: number;
  /** Smiley name: Grinning, HeartEyes, RollingEyes, Sleeping, Cursing. */
  smiley: string;
  /** Colour name: blue, green, darkblue, grey, … */
  color: string;
  /** The mesh's route and backend for the smiley call (agents run with --debug-headers). */
  smileyRoute?: string;
  smileyBackend?: string;
  /** What failed, when anything did: face's own errors, or the start of a non-200 body. */
  errors?: string;
}

/** Face's JSON answer (test/faces/lib/face-cell.ts), the parts tests read. */
interface FaceAnswer {
  smileyName?: string;
  colorName?: string;
  served?: { smiley?: { route?: string; backend?: string } };
  errors?: string[];
}

export function faceDeployments(): string[] {
  return kubectl(["-n", FACES_NAMESPACE, "get", "deployments", "-o", "jsonpath={.items[*].metadata.name}"])
    .split(/\s+/)
    .filter(Boolean);
}

export async function deployFaces(timeoutMs = 120_000): Promise<void> {
  for (const f of readdirSync(FACES_APP_DIR).sort()) kubectl(["apply", "-f", join(FACES_APP_DIR, f)]);
  await eventually(
    "every faces Deployment available",
    () => {
      const rows = kubectl([
        "-n",
        FACES_NAMESPACE,
        "get",
        "deployments",
        "-o",
        'jsonpath={range .items[*]}{.metadata.name}={.status.availableReplicas}/{.spec.replicas}{"\\n"}{end}',
      ])
        .trim()
        .split("\n");
      const waiting = rows.filter((r) => {
        const [, ratio = ""] = r.split("=");
        const [have, want] = ratio.split("/");
        return Number(want) > 0 && Number(have || 0) < Number(want);
      });
      if (rows.length < 8 || waiting.length > 0)
        throw new Error(`waiting: ${waiting.join(", ") || rows.join(",")}`);
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/** http://<node address>:30080 of the node that runs faces-gui (its hostPort, via the portmap plugin). */
export function guiAddress(): string {
  const ip = kubectl([
    "-n",
    FACES_NAMESPACE,
    "get",
    "pods",
    "-l",
    "app=faces-gui",
    "--field-selector",
    "status.phase=Running",
    "-o",
    "jsonpath={.items[0].status.hostIP}",
  ]).trim();
  if (!ip) throw new Error("faces-gui is not running");
  return `http://${ip}:${GUI_HOST_PORT}`;
}

export const isCenter = (row: number, col: number): boolean => row >= 1 && row <= 2 && col >= 1 && col <= 2;

/** One cell, as the page asks for it: GET /face/<center|edge>/?row=&col= with X-Faces-User. */
export async function fetchCell(
  gui: string,
  row: number,
  col: number,
  user = "",
  timeoutMs = 10_000,
): Promise<Cell> {
  const kind = isCenter(row, col) ? "center" : "edge";
  const res = await fetch(`${gui}/face/${kind}/?row=${row}&col=${col}`, {
    headers: user ? { "x-faces-user": user } : {},
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (res.status !== 200) return { status: res.status, smiley: "", color: "", errors: text.slice(0, 200) };
  const body = JSON.parse(text) as FaceAnswer;
  return {
    status: res.status,
    smiley: body.smileyName ?? "",
    color: body.colorName ?? "",
    smileyRoute: body.served?.smiley?.route,
    smileyBackend: body.served?.smiley?.backend,
    errors: body.errors?.length ? body.errors.join(", ") : undefined,
  };
}

/** Every cell of the 4×4 grid once, in parallel like the page. */
export function fetchGrid(gui: string, user = ""): Promise<Cell[]> {
  const cells: Promise<Cell>[] = [];
  for (let row = 0; row < 4; row++)
    for (let col = 0; col < 4; col++) cells.push(fetchCell(gui, row, col, user));
  return Promise.all(cells);
}
