// Brings the cluster-in-a-box up once per vitest run for the integration and
// e2e projects, and down afterwards. TRELLIS_BOX_REUSE=1 reuses a healthy box
// started by `scripts/cluster.sh up` (for quick local iterations).
import { down, paths, status, up } from "./box.ts";

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  process.env.KUBECONFIG = paths().adminKubeconfig;
  if (process.env.TRELLIS_BOX_REUSE === "1") {
    // Reuse means "never tear down what someone else is using": refuse rather than rebuild.
    const s = await status();
    if (!s.up) throw new Error(`TRELLIS_BOX_REUSE=1 but the box is not healthy:\n${s.lines.join("\n")}`);
    return undefined;
  }
  await up();
  return async () => {
    await down();
  };
}
