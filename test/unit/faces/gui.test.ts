import http from "node:http";
import type net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { GUI_DIR, startGui } from "../../faces/servers/gui-server.ts";
import { freePort } from "../../support/free-port.ts";
import { smileyStub } from "./upstream-stubs.ts";
import { get, loopbackConfig, quiet } from "./workload-harness.ts";

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((c) => c()));
});

async function gui(faceService: string): Promise<string> {
  const w = await startGui({ ...(await loopbackConfig()), faceService, guiDir: GUI_DIR, logger: quiet });
  cleanup.push(() => w.close());
  return `http://127.0.0.1:${w.port}`;
}

describe("faces-gui", () => {
  it("serves the page and its assets", async () => {
    const base = await gui("127.0.0.1:1");
    const page = await get(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.body).toContain('id="grid"');
    expect(page.body).toContain('id="user"');
    const js = await get(`${base}/faces.js`);
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(js.body).toContain("X-Faces-User".toLowerCase());
    expect((await get(`${base}/faces.css`)).status).toBe(200);
    expect((await get(`${base}/index.html`)).body).toBe(page.body);
  });

  it("serves nothing but its own files", async () => {
    const base = await gui("127.0.0.1:1");
    for (const path of ["/nope.js", "/../package.json", "/%2e%2e/faces.ts", "/gui-server.ts"]) {
      expect((await get(`${base}${path}`)).status).toBe(404);
    }
  });

  it("proxies /face/<rest> to face with the query, X-Faces-User, status and headers", async () => {
    const face = await smileyStub({
      status: 504,
      body: '{"error":"timeout"}',
      headers: { "x-faces-pod": "face-1", "x-trellis-route": "faces/face/0" },
    });
    cleanup.push(() => face.close());
    const base = await gui(face.address);
    const res = await get(`${base}/face/edge/?row=0&col=3`, { "X-Faces-User": "heart" });
    expect(res.status).toBe(504);
    expect(res.body).toBe('{"error":"timeout"}');
    expect(res.headers.get("x-faces-pod")).toBe("face-1");
    expect(res.headers.get("x-trellis-route")).toBe("faces/face/0");
    expect(face.seen).toHaveLength(1);
    expect(face.seen[0]?.path).toBe("/edge/?row=0&col=3");
    expect(face.seen[0]?.headers["x-faces-user"]).toBe("heart");

    face.answer = { status: 200, body: '{"smiley":"&#x1F603;","color":"#66CCEE"}' };
    const ok = await get(`${base}/face/center/?row=1&col=1`);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ smiley: "&#x1F603;", color: "#66CCEE" });
    expect(face.seen[1]?.headers["x-faces-user"]).toBeUndefined();
  });

  it("sends a request again once when face closed the idle keep-alive connection under it", async () => {
    // a face that drops the second request of every connection without answering
    const seen: string[] = [];
    const face = http.createServer((req, res) => {
      const socket = req.socket as net.Socket & { served?: number };
      socket.served = (socket.served ?? 0) + 1;
      seen.push(`${req.url} #${socket.served}`);
      if (socket.served === 2) {
        socket.destroy();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
    await new Promise<void>((done) => face.listen(0, "127.0.0.1", done));
    cleanup.push(
      () =>
        new Promise((done) => {
          face.close(() => done());
          face.closeAllConnections();
        }),
    );
    const base = await gui(`127.0.0.1:${(face.address() as net.AddressInfo).port}`);
    expect((await get(`${base}/face/center/?row=1&col=1`)).status).toBe(200);
    expect((await get(`${base}/face/center/?row=1&col=2`)).status).toBe(200);
    expect(seen).toEqual(["/center/?row=1&col=1 #1", "/center/?row=1&col=2 #2", "/center/?row=1&col=2 #1"]);
  });

  it("answers 502 when face cannot be reached", async () => {
    const base = await gui(`127.0.0.1:${await freePort()}`);
    const res = await get(`${base}/face/center/?row=1&col=1`);
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ error: expect.stringMatching(/face unreachable/) });
  });
});
