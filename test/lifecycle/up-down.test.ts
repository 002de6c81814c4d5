// `up` and `down` of the cluster-in-a-box leave the machine as they found it,
// also when the previous box crashed (processes killed -9, nothing torn down).
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { down, readState, up } from "../cluster/box.ts";
import { boxProcesses } from "../cluster/processes.ts";

function machineState(): { netns: string; ruleset: string; routes: string; links: string } {
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: "utf8" });
  return {
    netns: run("ip", ["netns", "list"]),
    ruleset: run("nft", ["list", "ruleset"]),
    routes: run("ip", ["route", "show", "table", "all"]),
    links: run("ip", ["-o", "link", "show"]).replace(/\s+link\/.*$/gm, ""),
  };
}

describe("cluster-in-a-box lifecycle", () => {
  it("down after up restores netns, nftables ruleset, routes and links", async () => {
    // A box someone left running is not part of "the machine as it was".
    await down({ quiet: true });
    const before = machineState();
    await up({ nodes: 2, log: () => {} });
    const during = machineState();
    expect(during.netns).toMatch(/tbx-n1/);
    expect(during.routes).toMatch(/unreachable 10\.96\.0\.0\/16/);
    await down({ quiet: true });
    expect(boxProcesses()).toEqual([]);
    expect(machineState()).toEqual(before);
  });

  it("the next up after a crash cleans what the crashed box left", async () => {
    const before = machineState();
    await up({ nodes: 1, log: () => {} });
    // Simulate a crash: every box process dies at once, nothing is torn down.
    for (const pid of boxProcesses()) process.kill(pid, "SIGKILL");
    expect(readState()?.boxId).toBeTruthy();
    expect(machineState().netns).toMatch(/tbx-n1/);
    await up({ nodes: 1, log: () => {} });
    await down({ quiet: true });
    expect(boxProcesses()).toEqual([]);
    expect(machineState()).toEqual(before);
  });
});
