// The cluster-in-a-box's fixed addressing and file layout. Pure data: every
// other harness file derives names, addresses and paths from here, so a CIDR
// lives in exactly one place (a typo here could route test traffic off the
// machine — see ARCHITECTURE.md "No packet of the cluster may leave").
import path from "node:path";

export const KUBERNETES_VERSION = "v1.36.3";
export const GATEWAY_API_VERSION = "v1.6.1";

export const UNDERLAY_BRIDGE = "tbx0";
export const UNDERLAY_CIDR = "10.240.0.0/24";
export const UNDERLAY_HOST_IP = "10.240.0.1";
export const SERVICE_CIDR = "10.96.0.0/16";
export const CLUSTER_CIDR = "10.244.0.0/16";
export const KUBERNETES_SERVICE_IP = "10.96.0.1";
/**
 * Root-netns `unreachable` routes: the service CIDR, the underlay's /16 and
 * the pod supernet. Kept tight on purpose: a wider block (10.240.0.0/12 once)
 * swallowed this machine's DNS server at 10.255.255.53. `up` refuses to start
 * when a nameserver or an existing route falls inside one of them.
 */
export const UNREACHABLE_CIDRS = [SERVICE_CIDR, "10.240.0.0/16", CLUSTER_CIDR] as const;
export const CLUSTER_DOMAIN = "cluster.local";

export const API_PORT = 6443;
export const ETCD_CLIENT_URL = "http://127.0.0.1:12379";
export const ETCD_PEER_URL = "http://127.0.0.1:12380";
/** Prefix of every network namespace and root-netns link the box creates; `down` removes all of them. */
export const NAME_PREFIX = "tbx-";

export interface NodeLayout {
  name: string;
  index: number;
  netns: string;
  /** Root-netns end of the node's underlay veth. */
  hostVeth: string;
  underlayIP: string;
  podCIDR: string;
  podGateway: string;
}

export function nodeLayout(index: number): NodeLayout {
  if (!Number.isInteger(index) || index < 1 || index > 200) {
    throw new Error(`node index ${index} out of range 1..200 (NODES must be 1..200)`);
  }
  const name = `n${index}`;
  return {
    name,
    index,
    netns: `${NAME_PREFIX}${name}`,
    hostVeth: `${NAME_PREFIX}${name}`,
    underlayIP: `10.240.0.${10 + index}`,
    podCIDR: `10.244.${index}.0/24`,
    podGateway: `10.244.${index}.1`,
  };
}

export interface BoxPaths {
  root: string;
  state: string;
  pki: string;
  adminKubeconfig: string;
  stateFile: string;
  logs: string;
  nodeDir(node: string): string;
}

export function boxPaths(trellisRoot: string, stateDir = process.env.TRELLIS_BOX_DIR): BoxPaths {
  const state = stateDir ?? path.join(trellisRoot, ".tools", "box");
  return {
    root: trellisRoot,
    state,
    pki: path.join(state, "pki"),
    adminKubeconfig: path.join(state, "admin.kubeconfig"),
    stateFile: path.join(state, "state.json"),
    logs: path.join(state, "logs"),
    nodeDir: (node) => path.join(state, "nodes", node),
  };
}

export const TRELLIS_ROOT = path.resolve(import.meta.dirname, "..", "..");
export const TOOLS_BIN = path.join(TRELLIS_ROOT, ".tools", "bin");
