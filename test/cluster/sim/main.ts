// The node simulator: plays kubelet for one node of the cluster-in-a-box.
//
//   node test/cluster/sim/main.ts --config <stateDir>/nodes/<node>/node.json
//
// Runs as root in the root network namespace. Registers the Node and keeps it
// Ready, and runs the pods bound to it: pod netns + the real CNI chain (run in
// the node's netns), processes from the image map (test/cluster/images.ts),
// volumes, probes, status, deletion. SIGTERM/SIGINT stop every pod of the
// node (nothing left behind) and exit 0.
import { Command } from "commander";
import pino from "pino";
import { CniRuntime } from "./cni-runtime.ts";
import { loadNodeConfig } from "./config.ts";
import { EventRecorder } from "./events.ts";
import { KubeApi } from "./kube-api.ts";
import { NodeRegistration } from "./node-registration.ts";
import { PodSync } from "./pod-sync.ts";
import { Sandboxes } from "./sandbox.ts";
import { ServiceCatalog } from "./services.ts";

async function main(): Promise<void> {
  const program = new Command()
    .name("node-sim")
    .description("Trellis cluster-in-a-box node simulator (plays kubelet for one node)")
    .requiredOption("--config <path>", "node.json written by the cluster script")
    .option("--log-level <level>", "pino log level", process.env.LOG_LEVEL ?? "info")
    .parse();
  const opts = program.opts<{ config: string; logLevel: string }>();

  const cfg = loadNodeConfig(opts.config);
  const log = pino({ level: opts.logLevel, base: { component: "node-sim", node: cfg.name } });
  if (process.getuid?.() !== 0) throw new Error("the node simulator must run as root");

  const api = await KubeApi.fromKubeconfig(cfg.kubeconfig);
  const cni = new CniRuntime(cfg, log.child({ part: "cni" }));
  const sandboxes = new Sandboxes(cfg, cni, log.child({ part: "sandbox" }));
  const services = new ServiceCatalog(api, log.child({ part: "services" }));
  const events = new EventRecorder(api, cfg.name, log);
  const registration = new NodeRegistration(cfg, api, log.child({ part: "node" }));
  const pods = new PodSync({ cfg, api, log, cni, sandboxes, services, events });

  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      log.info({ signal }, "shutting down: stopping all pods of this node");
      const hardStop = setTimeout(() => {
        log.error("shutdown took too long; exiting");
        process.exit(1);
      }, 30_000);
      hardStop.unref();
      await pods.shutdown().catch((err: unknown) => log.error({ err: String(err) }, "pod shutdown failed"));
      await Promise.all([registration.stop(), services.stop()]);
      api.close();
      log.info("node simulator stopped");
      process.exit(0);
    })();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));

  log.info(
    { config: opts.config, underlayIP: cfg.underlayIP, podCIDR: cfg.podCIDR },
    "node simulator starting",
  );
  services.start();
  await registration.start();
  if (stopping) return;
  await pods.start();
  log.info("node simulator running");
}

main().catch((err: unknown) => {
  console.error(JSON.stringify({ level: 60, component: "node-sim", msg: "fatal", err: String(err) }));
  process.exit(1);
});
