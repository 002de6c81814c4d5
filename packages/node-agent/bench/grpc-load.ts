// Closed-loop gRPC unary load at saturation: `concurrency` calls always in
// flight over `sessions` HTTP/2 connections; prints { rps, ok, errors }.
//   node grpc-load.ts --port P --duration-ms 10000 --concurrency 64 --sessions 4

import http2 from "node:http2";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    "duration-ms": { type: "string", default: "10000" },
    "warmup-ms": { type: "string", default: "2000" },
    concurrency: { type: "string", default: "64" },
    sessions: { type: "string", default: "4" },
  },
});
const port = Number(values.port);
const durationMs = Number(values["duration-ms"]);
const warmupMs = Number(values["warmup-ms"]);
const concurrency = Number(values.concurrency);
const sessions = Array.from({ length: Number(values.sessions) }, () => {
  const s = http2.connect(`http://127.0.0.1:${port}`, { maxSessionMemory: 64 });
  s.on("error", () => {});
  return s;
});
const msg = Buffer.from("hello trellis");
const frame = Buffer.alloc(5 + msg.length);
frame.writeUInt32BE(msg.length, 1);
msg.copy(frame, 5);
const headers = {
  ":method": "POST",
  ":path": "/bench.Echo/Unary",
  "content-type": "application/grpc",
  te: "trailers",
};

let ok = 0;
let errors = 0;
let counting = false;
let stop = false;

function loop(i: number): void {
  if (stop) return;
  const session = sessions[i % sessions.length] as http2.ClientHttp2Session;
  const s = session.request(headers);
  let status = "";
  s.on("response", (h) => {
    if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
  });
  s.on("trailers", (t) => {
    status = String(t["grpc-status"]);
  });
  s.on("data", () => {});
  s.on("error", () => {});
  s.on("close", () => {
    if (counting) {
      if (status === "0") ok++;
      else errors++;
    }
    loop(i);
  });
  s.end(frame);
}

await new Promise((r) => setTimeout(r, 300));
for (let i = 0; i < concurrency; i++) loop(i);
await new Promise((r) => setTimeout(r, warmupMs));
counting = true;
const t0 = performance.now();
await new Promise((r) => setTimeout(r, durationMs));
counting = false;
const elapsed = (performance.now() - t0) / 1000;
stop = true;
console.log(JSON.stringify({ rps: Math.round(ok / elapsed), ok, errors }));
for (const s of sessions) s.destroy();
process.exit(0);
