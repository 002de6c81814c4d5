// Open-loop load generator: requests leave on a fixed timetable whatever the
// server does. A request that has to wait for a free connection (the server
// is slow) is measured from its scheduled time, so a stall shows up in the
// percentiles instead of silently lowering the rate (no coordinated
// omission). Otherwise it is measured from when it was written: the
// generator's own 1 ms timer granularity is not the server's latency. The
// generator sleeps between ticks instead of spinning, so on a small machine it
// does not steal a core from the processes being measured.
//
//   node openloop.ts --mode http1|grpc --port P --rate 1000 --duration-ms 10000 [--warmup-ms 2000]
// prints one JSON line: { sent, ok, errors, p50, p90, p99, p999, max } (milliseconds)

import http2 from "node:http2";
import net from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    mode: { type: "string", default: "http1" },
    port: { type: "string" },
    rate: { type: "string", default: "1000" },
    "duration-ms": { type: "string", default: "10000" },
    "warmup-ms": { type: "string", default: "2000" },
    connections: { type: "string", default: "16" },
    path: { type: "string", default: "/bench" },
  },
});
const port = Number(values.port);
const rate = Number(values.rate);
const durationMs = Number(values["duration-ms"]);
const warmupMs = Number(values["warmup-ms"]);
const connections = Number(values.connections);
const path = values.path as string;

type Done = (ok: boolean) => void;
interface Sender {
  send(done: Done): boolean;
  close(): void;
}

/** HTTP/1.1 keep-alive connections, one request at a time each; minimal response parsing. */
function http1Senders(): Sender {
  const req = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: openloop\r\n\r\n`);
  interface Conn {
    socket: net.Socket;
    busy: boolean;
    buf: Buffer;
    done: Done | null;
  }
  const conns: Conn[] = [];
  const idle: Conn[] = [];
  const open = (): void => {
    const socket = net.connect({ port, host: "127.0.0.1", noDelay: true });
    const c: Conn = { socket, busy: false, buf: Buffer.alloc(0), done: null };
    socket.on("data", (d: Buffer) => {
      c.buf = c.buf.length === 0 ? d : Buffer.concat([c.buf, d]);
      const end = c.buf.indexOf("\r\n\r\n");
      if (end === -1) return;
      const head = c.buf.subarray(0, end).toString("latin1");
      const m = /content-length:\s*(\d+)/i.exec(head);
      const len = m === null ? 0 : Number(m[1]);
      if (c.buf.length < end + 4 + len) return;
      const ok = head.startsWith("HTTP/1.1 200");
      c.buf = c.buf.subarray(end + 4 + len);
      const done = c.done;
      c.done = null;
      c.busy = false;
      idle.push(c);
      done?.(ok);
    });
    socket.on("error", () => {
      c.done?.(false);
      c.done = null;
    });
    conns.push(c);
    idle.push(c);
  };
  for (let i = 0; i < connections; i++) open();
  return {
    send(done) {
      const c = idle.pop();
      if (c === undefined) return false;
      c.busy = true;
      c.done = done;
      c.socket.write(req);
      return true;
    },
    close() {
      for (const c of conns) c.socket.destroy();
    },
  };
}

/** gRPC unary calls over one HTTP/2 session (multiplexed). */
function grpcSenders(): Sender {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  const msg = Buffer.from("hello trellis");
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt32BE(msg.length, 1);
  msg.copy(frame, 5);
  return {
    send(done) {
      const s = session.request({
        ":method": "POST",
        ":path": "/bench.Echo/Unary",
        "content-type": "application/grpc",
        te: "trailers",
      });
      let status = "";
      s.on("response", (h) => {
        if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      });
      s.on("trailers", (t) => {
        status = String(t["grpc-status"]);
      });
      s.on("data", () => {});
      s.on("close", () => done(status === "0"));
      s.on("error", () => {});
      s.end(frame);
      return true;
    },
    close() {
      session.destroy();
    },
  };
}

const sender = values.mode === "grpc" ? grpcSenders() : http1Senders();
const intervalMs = 1000 / rate;
const latencies: number[] = [];
let sent = 0;
let ok = 0;
let errors = 0;
let outstanding = 0;
const queue: number[] = [];

await new Promise((r) => setTimeout(r, 300));
const start = performance.now();
const measureFrom = start + warmupMs;
const end = measureFrom + durationMs;
let next = start;

function dispatch(scheduled: number, queued: boolean): void {
  outstanding++;
  const origin = queued ? scheduled : performance.now();
  const accepted = sender.send((good) => {
    outstanding--;
    if (scheduled >= measureFrom) {
      if (good) {
        ok++;
        latencies.push(performance.now() - origin);
      } else errors++;
    }
    const q = queue.shift();
    if (q !== undefined) dispatch(q, true);
  });
  if (!accepted) {
    outstanding--;
    // No free connection: wait for one; the latency counts from the scheduled time.
    queue.push(scheduled);
  }
}

await new Promise<void>((resolve) => {
  const tick = (): void => {
    const now = performance.now();
    while (next <= now && next < end) {
      if (next >= measureFrom) sent++;
      dispatch(next, false);
      next += intervalMs;
    }
    if (next >= end) {
      const wait = setInterval(() => {
        if ((outstanding === 0 && queue.length === 0) || performance.now() > end + 5_000) {
          clearInterval(wait);
          resolve();
        }
      }, 5);
      return;
    }
    setTimeout(tick, Math.max(0, next - performance.now() - 0.5));
  };
  tick();
});
sender.close();
latencies.sort((a, b) => a - b);
const q = (p: number): number =>
  latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
const round = (x: number): number => Math.round(x * 1000) / 1000;
console.log(
  JSON.stringify({
    sent,
    ok,
    errors,
    p50: round(q(0.5)),
    p90: round(q(0.9)),
    p99: round(q(0.99)),
    p999: round(q(0.999)),
    max: round(latencies[latencies.length - 1] ?? Number.NaN),
  }),
);
process.exit(0);
