// `trellis canary start`: flags and files to a Canary, and the errors a user sees.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canaryFromDocument, canaryFromFlags, type StartFlags } from "./canary-start.ts";

const base: StartFlags = {
  route: "httproute/smiley",
  stable: "smiley:80",
  canary: "smiley2:80",
  steps: "20,50,80",
};
const err = (b: ReturnType<typeof canaryFromFlags>) => (b.ok ? "" : b.error);

describe("canaryFromFlags", () => {
  it("builds the Canary the example file holds", () => {
    const b = canaryFromFlags(undefined, "faces", {
      ...base,
      rule: "0",
      interval: "10s",
      minRequests: "20",
      maxErrorRate: "5%",
      maxP99Ms: "5000",
    });
    expect(b.ok).toBe(true);
    const file = canaryFromDocument(
      readFileSync(
        join(import.meta.dirname, "../../../../examples/faces/routes/12-smiley-canary.yaml"),
        "utf8",
      ),
      undefined,
      "12-smiley-canary.yaml",
    );
    expect(file.ok && b.ok && b.object).toEqual(file.ok && file.object);
  });

  it("takes step weights, rule names, comparison and webhooks", () => {
    const b = canaryFromFlags("c1", "faces", {
      ...base,
      steps: undefined,
      route: "GRPCRoute/color",
      rule: "default",
      stepWeight: "25",
      maxWeight: "50",
      compareErrorRateIncrease: "0.02",
      compareP99Ratio: "1.5",
      compareMinStableRequests: "50",
      webhook: ["name=smoke,type=prestep,url=http://smoke.faces/hook,timeout=3s,failures=2"],
      paused: true,
    });
    expect(b.ok && b.object).toMatchObject({
      metadata: { name: "c1", namespace: "faces" },
      spec: {
        targetRef: { kind: "GRPCRoute", name: "color" },
        rule: { name: "default" },
        stepWeight: 25,
        maxWeight: 50,
        analysis: {
          compareToStable: { maxErrorRateIncrease: 0.02, maxP99Ratio: 1.5, minStableRequests: 50 },
        },
        webhooks: [
          {
            name: "smoke",
            type: "PreStep",
            url: "http://smoke.faces/hook",
            timeoutSeconds: 3,
            failureThreshold: 2,
          },
        ],
        paused: true,
      },
    });
  });

  it("says what is wrong and what to type instead", () => {
    expect(err(canaryFromFlags(undefined, "faces", { ...base, route: undefined }))).toMatch(
      /--route is required\n {2}fix: --route httproute\/NAME/,
    );
    expect(err(canaryFromFlags(undefined, "faces", { ...base, stable: "smiley" }))).toMatch(
      /--stable "smiley" is not SERVICE:PORT\n {2}fix: --stable smiley:80/,
    );
    expect(err(canaryFromFlags(undefined, "faces", { ...base, steps: undefined }))).toMatch(
      /fix: --steps 10,50,80/,
    );
    expect(err(canaryFromFlags(undefined, "faces", { ...base, stepWeight: "10" }))).toMatch(/both given/);
    expect(err(canaryFromFlags(undefined, "faces", { ...base, steps: "50,20" }))).toMatch(
      /strictly increasing/,
    );
    expect(err(canaryFromFlags(undefined, "faces", { ...base, steps: "0,20" }))).toMatch(
      /--steps "0" is not an integer 1-99/,
    );
    expect(err(canaryFromFlags(undefined, "faces", { ...base, interval: "10 s" }))).toMatch(
      /fix: --interval 30s/,
    );
    expect(err(canaryFromFlags(undefined, "faces", { ...base, maxErrorRate: "5" }))).toMatch(
      /not a rate 0-1/,
    );
    expect(err(canaryFromFlags(undefined, "faces", { ...base, canary: "smiley:80" }))).toMatch(
      /are the same/,
    );
    expect(err(canaryFromFlags(undefined, "faces", { ...base, webhook: ["name=x,url=http://a/"] }))).toMatch(
      /has no type/,
    );
    expect(err(canaryFromFlags(undefined, "faces", { ...base, compareMinStableRequests: "5" }))).toMatch(
      /without a comparison/,
    );
  });
});

describe("canaryFromDocument", () => {
  it("reads every Canary example of the faces workshop", () => {
    const dir = join(import.meta.dirname, "../../../../examples/faces/routes");
    const files = readdirSync(dir).filter((f) => f.startsWith("12"));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) {
      const b = canaryFromDocument(readFileSync(join(dir, f), "utf8"), undefined, f);
      expect(b.ok ? "" : b.error, f).toBe("");
    }
  });

  it("picks the one Canary, fills the namespace, and names the documents it leaves alone", () => {
    const text = `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n---\napiVersion: trellis.dev/v1alpha1\nkind: Canary\nmetadata: { name: c }\nspec:\n  targetRef: { kind: HTTPRoute, name: smiley }\n  stableBackend: { name: smiley, port: 80 }\n  canaryBackend: { name: smiley2, port: 80 }\n  steps: [50]\n  analysis: {}\n`;
    const b = canaryFromDocument(text, "faces", "c.yaml");
    expect(b.ok && b.object.metadata).toEqual({ name: "c", namespace: "faces" });
    expect(b.ok && b.note).toMatch(/also holds ConfigMap\/x: not applied/);
    expect(err(canaryFromDocument(text, "other", "c.yaml") as never)).toBe("");
    expect(err(canaryFromDocument("kind: Canary\n", undefined, "c.yaml"))).toMatch(/not a Canary/);
    expect(err(canaryFromDocument("a: [", undefined, "c.yaml"))).toMatch(/c.yaml is not YAML/);
    expect(err(canaryFromDocument("kind: Service\n", undefined, "c.yaml"))).toMatch(
      /holds 0 Canary documents/,
    );
  });
});
