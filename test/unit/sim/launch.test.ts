import { describe, expect, it } from "vitest";
import type { Pod } from "../../cluster/sim/k8s-types.ts";
import { containerMounts, LAUNCHER, launchArgv, podHostname } from "../../cluster/sim/launch.ts";

const sources: Record<string, string> = {
  data: "/state/pods/u/volumes/data",
  token: "/state/pods/u/volumes/token",
  host: "/srv",
};

describe("containerMounts", () => {
  it("maps volumes to their sources, parents first", () => {
    const mounts = containerMounts(
      {
        name: "app",
        volumeMounts: [
          { name: "token", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true },
          { name: "data", mountPath: "/data" },
          { name: "data", mountPath: "/data/logs/", subPath: "logs" },
          { name: "host", mountPath: "/var/run" },
        ],
      },
      (v) => sources[v],
      {},
    );
    expect(mounts).toEqual([
      { source: "/state/pods/u/volumes/data", target: "/data", readOnly: false },
      { source: "/state/pods/u/volumes/data/logs", target: "/data/logs/", readOnly: false },
      { source: "/srv", target: "/var/run", readOnly: false },
      {
        source: "/state/pods/u/volumes/token",
        target: "/var/run/secrets/kubernetes.io/serviceaccount",
        readOnly: true,
      },
    ]);
  });

  it("expands subPathExpr and refuses escapes", () => {
    const m = containerMounts(
      { name: "app", volumeMounts: [{ name: "data", mountPath: "/d", subPathExpr: "$(POD_NAME)" }] },
      (v) => sources[v],
      { POD_NAME: "web-1" },
    );
    expect(m[0]?.source).toBe("/state/pods/u/volumes/data/web-1");
    expect(() =>
      containerMounts(
        { name: "a", volumeMounts: [{ name: "data", mountPath: "/d", subPath: "../x" }] },
        (v) => sources[v],
        {},
      ),
    ).toThrow(/subPath/);
    expect(() =>
      containerMounts(
        { name: "a", volumeMounts: [{ name: "nope", mountPath: "/d" }] },
        (v) => sources[v],
        {},
      ),
    ).toThrow(/not defined/);
  });
});

describe("mounts that would hide host paths", () => {
  const vm = (mountPath: string) => ({ name: "app", volumeMounts: [{ name: "data", mountPath }] });
  it("refuses to hide the repo, system dirs or other mounts' sources", () => {
    const protectedPaths = ["/work/main", "/work/main/.tools/box/nodes/n1"];
    expect(() => containerMounts(vm("/work"), (v) => sources[v], {}, protectedPaths)).toThrow(
      /would hide \/work\/main/,
    );
    expect(() => containerMounts(vm("/work/main/"), (v) => sources[v], {}, protectedPaths)).toThrow(
      /would hide/,
    );
    expect(() => containerMounts(vm("/etc"), (v) => sources[v], {}, protectedPaths)).toThrow(
      /would hide \/etc/,
    );
    expect(() => containerMounts(vm("/"), (v) => sources[v], {}, protectedPaths)).toThrow(/would hide/);
    const two = {
      name: "app",
      volumeMounts: [
        { name: "data", mountPath: "/state" },
        { name: "token", mountPath: "/t" },
      ],
    };
    expect(() => containerMounts(two, (v) => sources[v], {}, [])).toThrow(
      /would hide \/state\/pods\/u\/volumes\/token/,
    );
  });
  it("allows a hostPath mounted at its own path", () => {
    const m = containerMounts(
      { name: "agent", volumeMounts: [{ name: "run", mountPath: "/var/run/trellis" }] },
      () => "/var/run/trellis",
      {},
      [],
    );
    expect(m).toEqual([{ source: "/var/run/trellis", target: "/var/run/trellis", readOnly: false }]);
  });

  it("allows ordinary paths, including below system dirs", () => {
    expect(containerMounts(vm("/etc/app"), (v) => sources[v], {}, ["/work/main"])).toHaveLength(1);
    expect(containerMounts(vm("/work2"), (v) => sources[v], {}, ["/work/main"])).toHaveLength(1);
  });
});

describe("launchArgv", () => {
  it("enters the netns, unshares UTS, and passes paths as arguments, not script text", () => {
    const argv = launchArgv({
      netns: "tbx-n1-0a1b2c3d",
      hostname: "web-1",
      workingDir: "/",
      mounts: [{ source: "/s p", target: "/t;rm -rf /", readOnly: true }],
      argv: ["node", "echo.ts"],
    });
    expect(argv.slice(0, 10)).toEqual([
      "ip",
      "netns",
      "exec",
      "tbx-n1-0a1b2c3d",
      "unshare",
      "--uts",
      "--",
      "sh",
      "-c",
      LAUNCHER,
    ]);
    expect(argv.slice(10)).toEqual([
      "sh",
      "web-1",
      "/",
      "/s p",
      "/t;rm -rf /",
      "ro",
      "--",
      "node",
      "echo.ts",
    ]);
    expect(LAUNCHER).not.toContain("rm -rf");
  });
});

describe("podHostname", () => {
  it("prefers spec.hostname and cuts at 63 characters", () => {
    const p = (name: string, hostname?: string): Pod => ({
      metadata: { name },
      spec: { containers: [], ...(hostname ? { hostname } : {}) },
    });
    expect(podHostname(p("web-1"))).toBe("web-1");
    expect(podHostname(p("web-1", "db-0"))).toBe("db-0");
    expect(podHostname(p(`${"a".repeat(62)}-bcd`))).toBe("a".repeat(62));
  });
});
