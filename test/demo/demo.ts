// The demo command's foreground process: the cluster-in-a-box, Trellis
// installed from source, the faces demo deployed in a captured namespace, and
// the GUI reachable from the host. Ctrl-C tears everything down.
import net from "node:net";
import { down, kubectl, paths, up } from "../cluster/box.ts";
import { installTrellis } from "../cluster/trellis-install.ts";
import { eventually } from "../support/eventually.ts";
import {
  deployFaces,
  FACES_ROUTES_DIR,
  fetchGrid,
  GUI_HOST_PORT,
  guiAddress,
} from "../support/faces-cluster.ts";

// The shell wrapper passes when the command started, so the bootstrap counts too.
const t0 = Number(process.env.TRELLIS_DEMO_T0_MS) || Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
const step = (m: string) => process.stderr.write(`[demo ${elapsed()}] ${m}\n`);

let stopping = false;
let forward: net.Server | undefined;
async function stop(code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write("\nstopping: tearing the cluster-in-a-box down…\n");
  forward?.close();
  await down();
  process.exit(code);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());

/** 127.0.0.1:30080 → the GUI's node address, so a browser on this machine (or an SSH tunnel) reaches it at localhost. */
function forwardLocalhost(target: URL): Promise<net.Server> {
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(GUI_HOST_PORT, "127.0.0.1", () => resolve(server));
  });
}

try {
  step("bringing the cluster-in-a-box up (etcd, kube-apiserver, controller-manager, scheduler, 2 nodes)");
  await up({ log: (m) => process.stderr.write(`        ${m}\n`) });
  step("installing Trellis from source: controller, an agent per node, the CNI shim in each node's chain");
  await installTrellis({ debugHeaders: true, log: (m) => step(`  ${m}`) });
  step("deploying faces into namespace faces (labelled trellis.dev/capture=enabled)");
  await deployFaces();
  const gui = guiAddress();
  step(`faces is running; waiting for a full grid from ${gui}`);
  await eventually(
    "16 grinning faces on blue",
    async () => {
      const cells = await fetchGrid(gui);
      const good = cells.filter(
        (c) => c.status === 200 && c.smiley === "Grinning" && c.color === "blue",
      ).length;
      if (good < 16) throw new Error(`${good}/16 cells grinning on blue`);
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  step("full grid: 16 grinning faces on blue");
  let local = "";
  try {
    forward = await forwardLocalhost(new URL(gui));
    local = `  or http://127.0.0.1:${GUI_HOST_PORT}/ (forwarded by this process)`;
  } catch (err) {
    local = `  (127.0.0.1:${GUI_HOST_PORT} is taken, so no localhost forward: ${(err as Error).message})`;
  }
  const kubeconfig = paths().adminKubeconfig;
  process.stdout.write(
    [
      "",
      kubectl(["get", "pods", "-A", "-o", "wide"]),
      `Faces GUI: ${gui}/`,
      local,
      "",
      "In another terminal:",
      `  export KUBECONFIG=${kubeconfig} PATH=${paths().root}/.tools/bin:$PATH`,
      `  kubectl apply -f ${FACES_ROUTES_DIR}/02-smiley-route.yaml     # every face turns to heart-eyes`,
      `  kubectl delete -f ${FACES_ROUTES_DIR}/02-smiley-route.yaml    # and back`,
      "The workshop, step by step: docs/faces-walkthrough.md",
      "Press Ctrl-C to stop and remove everything this demo created.",
      "",
    ].join("\n"),
  );
} catch (err) {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  await stop(1);
}
setInterval(() => {}, 1 << 30);
