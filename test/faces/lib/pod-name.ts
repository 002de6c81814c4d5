// The name a workload reports in X-Faces-Pod: POD_NAME (downward API) or the hostname.
import { hostname } from "node:os";

export function podName(env: NodeJS.ProcessEnv = process.env): string {
  return env.POD_NAME || hostname();
}
