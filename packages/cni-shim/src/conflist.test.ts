import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  conflistFromConf,
  conflistNameFor,
  formatJson,
  type Json,
  type JsonObject,
  pickPrimaryConfig,
  RESTORE_KEY,
  withoutShim,
  withShim,
} from "./conflist.ts";

const entry = (socketPath = "/var/run/trellis/cni.sock"): JsonObject => ({ type: "trellis-cni", socketPath });

const json = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>;
/** Any plugin but ours: arbitrary keys and values, a type that is not trellis-cni. */
const otherPlugin = fc
  .tuple(
    fc.dictionary(fc.string({ maxLength: 8 }), json, { maxKeys: 5 }),
    fc.string({ maxLength: 12 }).filter((t) => t !== "trellis-cni"),
  )
  .map(([d, type]): JsonObject => ({ ...d, type }));
const conflist = fc
  .tuple(
    fc.dictionary(
      fc.string({ maxLength: 8 }).filter((k) => k !== "plugins"),
      json,
      { maxKeys: 4 },
    ),
    fc.array(otherPlugin, { maxLength: 5 }),
  )
  .map(([head, plugins]): JsonObject => ({ cniVersion: "1.0.0", name: "k8s", ...head, plugins }));

describe("withShim / withoutShim", () => {
  it("appends our entry last", () => {
    const c = { cniVersion: "1.0.0", name: "n", plugins: [{ type: "bridge" }, { type: "portmap" }] };
    expect(withShim(c, entry())).toEqual({ ...c, plugins: [...c.plugins, entry()] });
  });

  it("replaces an existing entry where it stands and drops duplicates", () => {
    const c: JsonObject = {
      plugins: [
        { type: "bridge" },
        { type: "trellis-cni", socketPath: "/old" },
        { type: "x" },
        { type: "trellis-cni" },
      ],
    };
    expect(withShim(c, entry("/new")).plugins).toEqual([
      { type: "bridge" },
      { type: "trellis-cni", socketPath: "/new" },
      { type: "x" },
    ]);
  });

  it("keeps the restore marker of a converted .conf across reinstalls", () => {
    const c: JsonObject = {
      plugins: [{ type: "bridge" }, { ...entry("/old"), [RESTORE_KEY]: "10-bridge.conf" }],
    };
    expect(withShim(c, entry()).plugins).toEqual([
      { type: "bridge" },
      { ...entry(), [RESTORE_KEY]: "10-bridge.conf" },
    ]);
  });

  it("install twice is install once", () => {
    fc.assert(
      fc.property(conflist, (c) => {
        const once = withShim(c, entry());
        expect(formatJson(withShim(once, entry()))).toBe(formatJson(once));
      }),
    );
  });

  it("uninstall after install gives back the original, byte for byte as a JSON round trip", () => {
    fc.assert(
      fc.property(conflist, (c) => {
        const back = withoutShim(withShim(c, entry()));
        expect(back.removed).toBe(1);
        expect(back.restoreConf).toBeUndefined();
        expect(formatJson(back.conflist)).toBe(formatJson(c));
      }),
    );
  });

  it("our entry is last after install, and exactly once", () => {
    fc.assert(
      fc.property(conflist, (c) => {
        const plugins = withShim(c, entry()).plugins as JsonObject[];
        expect(plugins.filter((p) => p.type === "trellis-cni")).toHaveLength(1);
        expect(plugins.at(-1)).toEqual(entry());
      }),
    );
  });

  it("uninstall without our entry changes nothing", () => {
    fc.assert(
      fc.property(conflist, (c) => {
        expect(withoutShim(c)).toEqual({ conflist: c, removed: 0, restoreConf: undefined });
      }),
    );
  });
});

describe("converting a single-plugin .conf", () => {
  const conf = {
    cniVersion: "0.4.0",
    name: "bridge-net",
    type: "bridge",
    bridge: "cni0",
    ipam: { type: "host-local" },
  };

  it("keeps the whole config as the one plugin (as libcni does)", () => {
    expect(conflistFromConf(conf)).toEqual({ cniVersion: "0.4.0", name: "bridge-net", plugins: [conf] });
  });

  it("restores it verbatim on uninstall", () => {
    const installed = withShim(conflistFromConf(conf), { ...entry(), [RESTORE_KEY]: "10-bridge.conf" });
    const back = withoutShim(installed);
    expect(back.restoreConf).toBe("10-bridge.conf");
    expect((back.conflist.plugins as Json[])[0]).toEqual(conf);
  });

  it("does not restore a conflist someone added plugins to since", () => {
    const installed = withShim(conflistFromConf(conf), { ...entry(), [RESTORE_KEY]: "10-bridge.conf" });
    const grown = {
      ...installed,
      plugins: [conf, { type: "portmap" }, ...(installed.plugins as Json[]).slice(1)],
    };
    expect(withoutShim(grown).restoreConf).toBeUndefined();
  });

  it("names the conflist after the conf", () => {
    expect(conflistNameFor("10-bridge.conf")).toBe("10-bridge.conflist");
    expect(conflistNameFor("10-net.json")).toBe("10-net.conflist");
  });
});

describe("pickPrimaryConfig", () => {
  it("takes the first config file in byte order, as libcni does", () => {
    expect(pickPrimaryConfig(["20-b.conflist", "10-a.conf", "05-c.json", "00-readme.txt"])).toBe("05-c.json");
    expect(pickPrimaryConfig(["Z.conflist", "a.conflist"])).toBe("Z.conflist");
    expect(pickPrimaryConfig(["x.conflist.bak", "notes"])).toBeUndefined();
  });
});
