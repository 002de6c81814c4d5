// The CNI socket during a rolling update: the new agent takes the path over
// atomically, and the old agent's close leaves it alone.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { Capture } from "./capture.ts";
import { startCniServer } from "./cni-server.ts";
import { NftProgram } from "./nft.ts";

const dir = mkdtempSync(join(os.tmpdir(), "trellis-cni-socket-"));
const socket = join(dir, "cni.sock");
const log = pino({ level: "silent" });
const capture = () => new Capture({ log, nft: new NftProgram("false") });

/** Status of GET / on the socket (404 from a live agent), or the connect error's code. */
function probe(): Promise<number | string> {
  return new Promise((resolve) => {
    // A new connection each time (no pooled one to a closed server).
    const r = http.get({ socketPath: socket, path: "/", agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    r.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("CNI socket handover", () => {
  it("a second agent takes the path over; the first one's close leaves it; the last close removes it", async () => {
    const first = await startCniServer(capture(), socket, log);
    expect(await probe()).toBe(404);
    expect(await first.owned()).toBe(true);
    const second = await startCniServer(capture(), socket, log);
    expect(await probe()).toBe(404);
    // The first agent learns that a newer one owns the node's capture.
    expect(await first.owned()).toBe(false);
    expect(await second.owned()).toBe(true);
    // No private bind names are left next to the socket.
    expect(existsSync(socket)).toBe(true);
    await first.close();
    expect(existsSync(socket)).toBe(true);
    expect(await probe()).toBe(404);
    await second.close();
    expect(existsSync(socket)).toBe(false);
    expect(await probe()).toBe("ENOENT");
  });
});
