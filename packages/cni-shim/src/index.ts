// Public surface for other packages and the test harness: the installer as a
// library (the executable itself is built by scripts/build.ts into dist/).

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export { InstallError, install, SHIM_BINARY, shimEntry, uninstall } from "./installer.ts";
export { DEFAULT_SETTINGS, type ShimSettings } from "./net-conf.ts";

/** Where `node packages/cni-shim/scripts/build.ts` writes the single executable. */
export const SHIM_EXECUTABLE = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "trellis-cni");
