// CLI of the cluster-in-a-box: `node test/cluster/cluster.ts up|down|status|kubeconfig`.
// Run it through `scripts/cluster.sh`, which bootstraps first.
import { parseArgs } from "node:util";
import { down, paths, status, up } from "./box.ts";

const usage = `usage: cluster.ts <command> [--nodes N]

commands:
  up          start etcd, kube-apiserver, controller-manager, scheduler and N simulated
              nodes (network namespace + kube-proxy in nftables mode + node simulator);
              replaces any box that is already up. Prints the kubeconfig path.
  down        stop every box process; remove its namespaces, links, routes and state
  status      show the box's processes, apiserver readiness and kubeconfig path
  kubeconfig  print the admin kubeconfig path

options:
  --nodes N   number of simulated nodes for up (default: $NODES or 2)
`;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { nodes: { type: "string" }, help: { type: "boolean", short: "h" } },
});
const command = positionals[0];
if (values.help || !command) {
  process.stdout.write(usage);
  process.exit(values.help ? 0 : 2);
}

try {
  switch (command) {
    case "up": {
      await up(values.nodes ? { nodes: Number(values.nodes) } : {});
      process.stdout.write(`KUBECONFIG=${paths().adminKubeconfig}\n`);
      break;
    }
    case "down":
      await down();
      break;
    case "status": {
      const s = await status();
      process.stdout.write(`${s.lines.join("\n")}\n`);
      process.exitCode = s.up ? 0 : 1;
      break;
    }
    case "kubeconfig":
      process.stdout.write(`${paths().adminKubeconfig}\n`);
      break;
    default:
      process.stderr.write(`unknown command ${command}\n${usage}`);
      process.exitCode = 2;
  }
} catch (err) {
  process.stderr.write(`cluster ${command} failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
