// Plain TCP passthrough to an endpoint of the service port's default backend.

import net from "node:net";
import type { Logger } from "pino";
import type { AgentMetrics } from "../metrics.ts";
import type { PortPlan } from "../table/compile.ts";

export function passthrough(
  socket: net.Socket,
  plan: PortPlan,
  random: () => number,
  metrics: AgentMetrics | null,
  log: Logger,
): void {
  const ep = plan.defaultBackend?.pick(random, null) ?? null;
  if (ep === null) {
    metrics?.tcpConnection(plan.key, "no_endpoint");
    socket.destroy();
    return;
  }
  ep.ewma.pending++;
  let settled = false;
  const settle = (ok: boolean | null): void => {
    if (settled) return;
    settled = true;
    ep.ewma.pending--;
    if (ok === null) ep.breaker.abandon();
    else ep.breaker.record(ok);
  };
  ep.breaker.onSend();
  const started = performance.now();
  const upstream = net.connect({ host: ep.ip, port: ep.port, noDelay: true });
  upstream.once("connect", () => {
    const now = performance.now();
    ep.ewma.observe(now - started, now);
    settle(true);
    metrics?.tcpConnection(plan.key, "ok");
  });
  upstream.on("error", (err) => {
    if (!settled) {
      settle(false);
      metrics?.tcpConnection(plan.key, "connect_failed");
      log.debug({ err, endpoint: ep.address, destination: plan.key }, "tcp connect failed");
    }
    socket.destroy();
  });
  socket.on("error", () => upstream.destroy());
  socket.on("close", () => {
    settle(null);
    upstream.destroy();
  });
  upstream.on("close", () => socket.destroy());
  socket.pipe(upstream);
  upstream.pipe(socket);
  socket.resume();
}
