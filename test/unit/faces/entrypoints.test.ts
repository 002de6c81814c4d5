// The four entry points as real processes, configured only through their
// environment, wired into one demo on loopback: browser → faces-gui → face →
// smiley + color.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FaceCell } from "../../faces/lib/face-cell.ts";
import { freePort } from "../../support/free-port.ts";
import { get } from "./workload-harness.ts";

const FACES = join(import.meta.dirname, "..", "..", "faces");

type Proc = { child: ChildProcess; logs: string[]; exited: Promise<number | null> };
const procs: Proc[] = [];

/** Starts `node test/faces/<file>` and resolves once it logged that it listens. */
function start(file: string, env: Record<string, string>): Promise<Proc> {
  const child = spawn(process.execPath, [join(FACES, file)], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", METRICS_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
  const proc = { child, logs, exited };
  procs.push(proc);
  return new Promise((done, fail) => {
    let buffered = "";
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        logs.push(line);
        if (line.includes("listening")) done(proc);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    exited.then((code) => fail(new Error(`${file} exited with ${code}: ${logs.join("\n")}`)));
    setTimeout(() => fail(new Error(`${file} did not start: ${logs.join("\n")}`)), 15_000).unref();
  });
}

let gui = "";
let smileyProc: Proc | undefined;

beforeAll(async () => {
  const [smileyPort, colorPort, facePort, guiPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  [smileyProc] = await Promise.all([
    start("smiley.ts", { PORT: String(smileyPort), SMILEY: "NoSuchFace", POD_NAME: "smiley-pod" }),
    start("color.ts", { PORT: String(colorPort), COLOR: "darkblue", POD_NAME: "color-pod" }),
    start("face.ts", {
      PORT: String(facePort),
      POD_NAME: "face-pod",
      SMILEY_SERVICE: `127.0.0.1:${smileyPort}`,
      COLOR_SERVICE: `127.0.0.1:${colorPort}`,
    }),
    start("faces-gui.ts", {
      PORT: String(guiPort),
      POD_NAME: "gui-pod",
      FACE_SERVICE: `127.0.0.1:${facePort}`,
    }),
  ]);
  gui = `http://127.0.0.1:${guiPort}`;
}, 30_000);

afterAll(async () => {
  for (const p of procs) p.child.kill("SIGTERM");
  await Promise.all(procs.map((p) => p.exited));
});

describe("faces entry points", () => {
  it("serve a cell through faces-gui → face → smiley and color", async () => {
    const res = await get(`${gui}/face/center/?row=1&col=1`, { "X-Faces-User": "heart" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-faces-pod")).toBe("face-pod");
    const cell = JSON.parse(res.body) as FaceCell;
    expect(cell).toMatchObject({
      smileyName: "Grinning",
      color: "#4477AA",
      served: { smiley: { pod: "smiley-pod" }, color: { pod: "color-pod" } },
    });
    expect((await get(`${gui}/`)).body).toContain('id="grid"');
  });

  it("log JSON lines, and an unknown SMILEY falls back to Grinning with a warning", () => {
    const lines = (smileyProc?.logs ?? []).map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(lines.find((l) => l.msg.startsWith("unknown SMILEY"))?.level).toBe(40);
  });

  it("exit 0 on SIGTERM", async () => {
    for (const p of procs) p.child.kill("SIGTERM");
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0, 0, 0]);
  });
});
