// The demo command's foreground process: brings the cluster-in-a-box up,
// shows what runs in it, and tears everything down on Ctrl-C.
import { down, kubectl, paths, up } from "../cluster/box.ts";

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write("\nstopping: tearing the cluster-in-a-box down…\n");
  await down();
  process.exit(0);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());

try {
  await up();
} catch (err) {
  process.stderr.write(
    `demo: cluster did not come up: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  await down();
  process.exit(1);
}
const kubeconfig = paths().adminKubeconfig;
process.stdout.write(`\n${kubectl(["get", "nodes,pods", "-A", "-o", "wide"])}\n`);
process.stdout.write(
  [
    "The cluster-in-a-box is up. In another terminal:",
    `  export KUBECONFIG=${kubeconfig} PATH=${paths().root}/.tools/bin:$PATH`,
    "  kubectl get nodes,pods -A",
    "Press Ctrl-C to stop it and remove everything it created.",
    "",
  ].join("\n"),
);
setInterval(() => {}, 1 << 30);
