import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseCapturedNamespaces, readCapturedNamespaces } from "./captured-namespaces.ts";

const dir = mkdtempSync(join(tmpdir(), "trellis-cni-ns-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("captured namespaces file", () => {
  it("lists what the agent wrote", () => {
    const r = parseCapturedNamespaces(
      JSON.stringify({ namespaces: ["a", "b"], updatedAt: "2026-01-01T00:00:00Z" }),
    );
    expect(r.kind === "listed" && [...r.namespaces]).toEqual(["a", "b"]);
  });

  it.each(["", "{", "null", "[]", '{"namespaces":"a"}', '{"namespaces":[1]}'])("%j is unusable", (text) => {
    expect(parseCapturedNamespaces(text).kind).toBe("unusable");
  });

  it("a missing file is absent, an unreadable one unusable", async () => {
    expect(await readCapturedNamespaces(join(dir, "nope.json"))).toEqual({ kind: "absent" });
    expect((await readCapturedNamespaces(dir)).kind).toBe("unusable"); // EISDIR
    const f = join(dir, "ok.json");
    writeFileSync(f, '{"namespaces":["x"]}');
    chmodSync(f, 0o644);
    expect((await readCapturedNamespaces(f)).kind).toBe("listed");
  });
});
