// One CNI invocation: environment + stdin in, stdout text + exit code out.
// I/O comes in through PluginDeps so every path runs in tests without a
// process, a socket or a file.

import type { CniRequest } from "@trellis/api/cni";
import type { AgentAnswer } from "./agent-client.ts";
import type { CapturedNamespaces } from "./captured-namespaces.ts";
import { type CniEnv, readCniEnv } from "./cni-env.ts";
import {
  cniError,
  DEFAULT_VERSION,
  ErrorCode,
  isSupportedVersion,
  passThroughResult,
  versionAllowsCheck,
  versionResult,
} from "./cni-result.ts";
import { agentWaitMs, verdict } from "./decision.ts";
import type { Log } from "./log.ts";
import { type NetConf, parseNetConf, type ShimSettings } from "./net-conf.ts";
import { podIps } from "./prev-result.ts";

/** DEL is best effort and must never hold up pod teardown for long. */
export const DEL_MAX_WAIT_SECONDS = 5;

export interface PluginDeps {
  askAgent(socketPath: string, req: CniRequest, timeoutMs: number): Promise<AgentAnswer>;
  readCapturedNamespaces(path: string): Promise<CapturedNamespaces>;
  makeLog(settings: Pick<ShimSettings, "logLevel" | "logFile">): Log;
}

export interface PluginOutput {
  /** Exactly what goes to stdout: one JSON document and a newline, or nothing. */
  stdout: string;
  exitCode: number;
}

const ok = (body?: unknown): PluginOutput => ({
  stdout: body === undefined ? "" : `${JSON.stringify(body)}\n`,
  exitCode: 0,
});

const fail = (cniVersion: string, code: number, msg: string, details?: string): PluginOutput => ({
  stdout: `${JSON.stringify(cniError(cniVersion, code, msg, details))}\n`,
  exitCode: 1,
});

/** Errors are reported in the config's version when it has a usable one. */
function sniffVersion(stdin: string): string {
  try {
    const v: unknown = JSON.parse(stdin);
    const c = typeof v === "object" && v !== null ? (v as Record<string, unknown>).cniVersion : undefined;
    return isSupportedVersion(c) ? c : DEFAULT_VERSION;
  } catch {
    return DEFAULT_VERSION;
  }
}

function request(env: CniEnv, ips: string[]): CniRequest {
  return {
    command: env.command as CniRequest["command"],
    containerId: env.containerId,
    netns: env.netns,
    ifName: env.ifName,
    podNamespace: env.pod.podNamespace,
    podName: env.pod.podName,
    podUid: env.pod.podUid,
    ips,
  };
}

export async function runPlugin(
  vars: Readonly<Record<string, string | undefined>>,
  stdin: string,
  deps: PluginDeps,
): Promise<PluginOutput> {
  const read = readCniEnv(vars);
  if (!read.ok) return fail(sniffVersion(stdin), ErrorCode.invalidEnvironment, read.msg);
  const env = read.env;
  if (env.command === "VERSION") return ok(versionResult(sniffVersion(stdin)));
  const parsed = parseNetConf(stdin);
  if (!parsed.ok)
    return fail(parsed.cniVersion ?? sniffVersion(stdin), parsed.code, parsed.msg, parsed.details);
  const conf = parsed.conf;
  const log = deps.makeLog(conf.settings).child({
    command: env.command,
    containerId: env.containerId,
    pod: `${env.pod.podNamespace}/${env.pod.podName}`,
  });
  try {
    switch (env.command) {
      case "DEL":
        return await del(env, conf, deps, log);
      case "ADD":
      case "CHECK":
        return await addOrCheck(env, conf, deps, log);
      default:
        // GC and STATUS (CNI 1.1): nothing of ours to collect, and a down agent
        // must not mark the node's network not ready: uncaptured pods can still start.
        return ok();
    }
  } catch (e) {
    log.error({ err: e }, "unexpected failure");
    return fail(
      conf.cniVersion,
      ErrorCode.ioFailure,
      `trellis-cni ${env.command} failed: ${(e as Error).message}`,
    );
  }
}

async function del(env: CniEnv, conf: NetConf, deps: PluginDeps, log: Log): Promise<PluginOutput> {
  // DEL must succeed whatever happens, so a prevResult we cannot read just means "IPs unknown".
  const found = conf.prevResult === undefined ? undefined : podIps(conf.prevResult);
  const ips = found?.ok ? found.ips : [];
  const waitMs = Math.round(Math.min(conf.settings.timeoutSeconds, DEL_MAX_WAIT_SECONDS) * 1000);
  const answer = await deps.askAgent(conf.settings.socketPath, request(env, ips), waitMs);
  if (answer.kind === "done") log.info({ ips }, "agent released pod");
  else log.warn({ ips, answer }, "agent not told about DEL; it reconciles from the API server");
  return ok();
}

async function addOrCheck(env: CniEnv, conf: NetConf, deps: PluginDeps, log: Log): Promise<PluginOutput> {
  const { cniVersion, prevResult, settings } = conf;
  if (env.command === "CHECK" && !versionAllowsCheck(cniVersion))
    return fail(cniVersion, ErrorCode.incompatibleVersion, `cniVersion ${cniVersion} does not allow CHECK`);
  if (prevResult === undefined)
    return fail(
      cniVersion,
      ErrorCode.invalidNetworkConfig,
      "trellis-cni is a chained plugin: it needs a prevResult, so it must follow the primary plugin in a conflist",
    );
  const found = podIps(prevResult);
  if (!found.ok) return fail(cniVersion, ErrorCode.invalidNetworkConfig, found.problem);
  const result = env.command === "ADD" ? passThroughResult(prevResult, cniVersion) : undefined;
  const { podNamespace, podName } = env.pod;
  if (podNamespace === "" || podName === "") {
    // Not started by kubelet: no namespace, so nothing Trellis could capture.
    log.info("no K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS; passing through");
    return ok(result);
  }
  const namespaces = await deps.readCapturedNamespaces(settings.capturedNamespacesFile);
  const waitMs = agentWaitMs(settings, namespaces, podNamespace);
  const started = performance.now();
  const agent = await deps.askAgent(settings.socketPath, request(env, found.ips), waitMs);
  const tookMs = Math.round(performance.now() - started);
  const v = verdict({ agent, namespaces, podNamespace, podName, settings });
  if (v.kind === "fail") {
    log.warn({ ips: found.ips, tookMs, code: v.code, details: v.details }, v.msg);
    return fail(cniVersion, v.code, v.msg, v.details);
  }
  if (v.note !== undefined) log.warn({ ips: found.ips, tookMs }, v.note);
  else log.info({ ips: found.ips, tookMs, captured: v.captured }, "agent answered");
  return ok(result);
}
