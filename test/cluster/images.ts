// The cluster-in-a-box has no container images: an image name maps to a
// command on this machine. The node simulator resolves a container's command
// from this map with Kubernetes semantics (see sim/command.ts):
//   entrypoint ~ the image's ENTRYPOINT, cmd ~ its CMD.
import { join } from "node:path";
import { TRELLIS_ROOT } from "./layout.ts";

export type ImageSpec = {
  /** The image ENTRYPOINT; replaced by a container's `command`. */
  entrypoint: readonly string[];
  /** The image CMD; replaced by a container's `args` (and dropped when `command` is set). */
  cmd: readonly string[];
  /** Default working directory (the container's `workingDir` wins). */
  workingDir?: string;
  /** Image environment; container env wins. */
  env?: Readonly<Record<string, string>>;
};

export { TRELLIS_ROOT } from "./layout.ts";

/** Node 24, the binary running this code (never the system node). */
const node = process.execPath;

export const images: Readonly<Record<string, ImageSpec>> = {
  "trellis.local/echo": {
    entrypoint: [node, join(TRELLIS_ROOT, "test/workloads/echo.ts")],
    cmd: [],
  },
  /** Makes requests from inside its pod on demand (`GET /dial?url=…`), so tests can act as a client pod. */
  "trellis.local/netexec": {
    entrypoint: [node, join(TRELLIS_ROOT, "test/workloads/netexec.ts")],
    cmd: [],
  },
  /** The Trellis node agent from source (the chart's agent image maps here). */
  "trellis.local/agent": {
    entrypoint: [node, join(TRELLIS_ROOT, "packages/node-agent/src/cli.ts")],
    cmd: [],
  },
  /** The Trellis controller from source (the chart's controller image maps here). */
  "trellis.local/controller": {
    entrypoint: [node, "--max-semi-space-size=8", join(TRELLIS_ROOT, "packages/controller/src/main.ts")],
    cmd: [],
  },
  /** The CNI shim's single executable (built by the bootstrap): `install` / `uninstall` in the DaemonSet. */
  "trellis.local/cni": {
    entrypoint: [join(TRELLIS_ROOT, "packages/cni-shim/dist/trellis-cni")],
    cmd: [],
  },
  /** Faces demo (test/faces/README.md): the page, and a proxy of /face/ to the face Service. */
  "trellis.local/faces-gui": {
    entrypoint: [node, join(TRELLIS_ROOT, "test/faces/faces-gui.ts")],
    cmd: [],
  },
  /** Faces demo: composes one cell from smiley (HTTP) and color (gRPC). */
  "trellis.local/faces-face": {
    entrypoint: [node, join(TRELLIS_ROOT, "test/faces/face.ts")],
    cmd: [],
  },
  /** Faces demo: answers a smiley (env SMILEY). */
  "trellis.local/faces-smiley": {
    entrypoint: [node, join(TRELLIS_ROOT, "test/faces/smiley.ts")],
    cmd: [],
  },
  /** Faces demo: the gRPC ColorService (env COLOR). */
  "trellis.local/faces-color": {
    entrypoint: [node, join(TRELLIS_ROOT, "test/faces/color.ts")],
    cmd: [],
  },
  /** A shell toolbox: runs `command`/`args` with the host's binaries; idles by default. */
  "trellis.local/shell": {
    entrypoint: [],
    cmd: ["sleep", "infinity"],
  },
};

/** Strips tag and digest: "trellis.local/echo:1.2@sha256:…" → "trellis.local/echo". */
export function imageRepository(image: string): string {
  const noDigest = image.split("@")[0] ?? image;
  const lastSlash = noDigest.lastIndexOf("/");
  const lastColon = noDigest.lastIndexOf(":");
  return lastColon > lastSlash ? noDigest.slice(0, lastColon) : noDigest;
}

export function lookupImage(image: string): ImageSpec | undefined {
  return images[imageRepository(image)];
}
