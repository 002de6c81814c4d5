import { describe, expect, it } from "vitest";
import { parseQuantity, resolveFieldRef, resolveResourceFieldRef } from "../../cluster/sim/downward-api.ts";
import type { Pod } from "../../cluster/sim/k8s-types.ts";

const allocatable = { cpu: "8", memory: "16Gi", "ephemeral-storage": "100Gi" };

describe("parseQuantity", () => {
  it.each([
    ["250m", 0.25],
    ["2", 2],
    ["1Ki", 1024],
    ["16Gi", 16 * 2 ** 30],
    ["1e3", 1000],
    ["1.5k", 1500],
  ])("%s", (q, v) => {
    expect(parseQuantity(q)).toBe(v);
  });
  it("rejects garbage", () => {
    expect(() => parseQuantity("12x")).toThrow();
  });
});

describe("resolveResourceFieldRef", () => {
  const c = {
    name: "app",
    resources: { limits: { cpu: "500m", memory: "128Mi" }, requests: { cpu: "250m" } },
  };
  it("uses limits, requests, and node allocatable as the default limit", () => {
    expect(resolveResourceFieldRef(c, { resource: "limits.cpu" }, allocatable)).toBe("1");
    expect(resolveResourceFieldRef(c, { resource: "limits.cpu", divisor: "1m" }, allocatable)).toBe("500");
    expect(resolveResourceFieldRef(c, { resource: "requests.cpu", divisor: "1m" }, allocatable)).toBe("250");
    expect(resolveResourceFieldRef(c, { resource: "limits.memory", divisor: "1Mi" }, allocatable)).toBe(
      "128",
    );
    expect(
      resolveResourceFieldRef({ name: "x" }, { resource: "limits.memory", divisor: "1Gi" }, allocatable),
    ).toBe("16");
  });
});

describe("resolveFieldRef", () => {
  const pod: Pod = {
    metadata: {
      name: "p",
      namespace: "ns",
      uid: "u",
      labels: { b: "2", a: "1" },
      annotations: { x: 'say "hi"' },
    },
    spec: { containers: [] },
  };
  const facts = { podIPs: ["10.244.1.2"], hostIPs: ["10.240.0.11"] };
  it("formats label maps like kubelet", () => {
    expect(resolveFieldRef(pod, { fieldPath: "metadata.labels" }, facts)).toBe('a="1"\nb="2"');
    expect(resolveFieldRef(pod, { fieldPath: "metadata.annotations" }, facts)).toBe('x="say \\"hi\\""');
  });
  it("knows pod and status fields, and returns undefined for others", () => {
    expect(resolveFieldRef(pod, { fieldPath: "spec.serviceAccountName" }, facts)).toBe("default");
    expect(resolveFieldRef(pod, { fieldPath: "status.podIPs" }, facts)).toBe("10.244.1.2");
    expect(resolveFieldRef(pod, { fieldPath: "spec.bogus" }, facts)).toBeUndefined();
  });
});
