import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { computeTables } from "../compute-tables.ts";
import { type ExplainRequest, explainRequest, parseExplainRequest } from "./explain-request.ts";

const testdata = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "testdata");

function tablesOf(name: string) {
  const docs = parseAllDocuments(readFileSync(join(testdata, `${name}.in.yaml`), "utf8"));
  return computeTables(docs.map((d) => d.toJS() as unknown).filter((o) => o != null)).tables;
}

const face = { namespace: "faces", name: "face-0" };
const explain = (name: string, req: Omit<ExplainRequest, "from">) =>
  explainRequest(tablesOf(name), { from: face, ...req });

describe("explainRequest on the faces workshop", () => {
  it("step 6: edge requests go to smiley2, the centre falls through to smiley", () => {
    const smiley = { namespace: "faces", name: "smiley", port: 80 };
    const edge = explain("faces-06-smiley-edge", { to: smiley, path: "/edge/?row=0&col=0" });
    expect(edge.matched).toBe("PathPrefix /edge → HTTPRoute faces/smiley-edge rule 0");
    expect(edge.backends).toEqual(["100 %: faces/smiley2:80 (1 ready endpoint)"]);
    const centre = explain("faces-06-smiley-edge", { to: smiley, path: "/center/?row=1&col=1" });
    expect(centre.notMatching).toEqual(["PathPrefix /edge: no"]);
    expect(centre.matched).toBe("PathPrefix / → HTTPRoute faces/smiley-edge rule 1");
    // Segment-aware: /edgeways is not under /edge.
    expect(explain("faces-06-smiley-edge", { to: smiley, path: "/edgeways" }).matched).toContain("rule 1");
  });

  it("step 7: the edge split shows each backend's share", () => {
    const r = explain("faces-07-smiley-edge-split", {
      to: { namespace: "faces", name: "smiley", port: 80 },
      path: "/edge/",
    });
    expect(r.backends).toEqual([
      "50 %: faces/smiley3:80 (1 ready endpoint)",
      "50 %: faces/smiley2:80 (1 ready endpoint)",
    ]);
  });

  it("step 9: the header decides", () => {
    const to = { namespace: "faces", name: "smiley", port: 80 };
    expect(explain("faces-09-smiley-a-b", { to, headers: [["X-Faces-User", "heart"]] }).matched).toContain(
      "smiley-a-b rule 0",
    );
    expect(explain("faces-09-smiley-a-b", { to, headers: [["x-faces-user", "Heart"]] }).matched).toContain(
      "smiley-a-b rule 1",
    );
  });

  it("step 10: for user heart the centre goes to color3, edges stay on color-edge", () => {
    const to = { namespace: "faces", name: "color", port: 80 };
    const heart: [string, string][] = [["x-faces-user", "heart"]];
    const centre = explain("faces-10-color-a-b", {
      to,
      grpc: { service: "ColorService", method: "Center" },
      headers: heart,
    });
    expect(centre.matched).toBe(
      "ColorService/*, header x-faces-user=heart → GRPCRoute faces/color-a-b rule 0",
    );
    expect(centre.backends).toEqual(["100 %: faces/color3:80 (1 ready endpoint)"]);
    const edge = explain("faces-10-color-a-b", {
      to,
      grpc: { service: "ColorService", method: "Edge" },
      headers: heart,
    });
    expect(edge.matched).toBe("ColorService/Edge → GRPCRoute faces/color-edge rule 0");
    const other = explain("faces-10-color-a-b", { to, grpc: { service: "ColorService", method: "Center" } });
    expect(other.matched).toBe("any method → GRPCRoute faces/color rule 0");
    expect(other.backends).toEqual([
      "50 %: faces/color:80 (1 ready endpoint)",
      "50 %: faces/color2:80 (1 ready endpoint)",
    ]);
  });

  it("says when nothing routes: no route, not meshed, unknown pod", () => {
    const none = explain("faces-01-no-routes", { to: { namespace: "faces", name: "smiley", port: 80 } });
    expect(none.verdict).toBe("forwarded to the Service's own endpoints (backend faces/smiley:80)");
    expect(
      explain("faces-01-no-routes", { to: { namespace: "faces", name: "smiley", port: 81 } }).verdict,
    ).toMatch(/not meshed/);
    expect(
      explainRequest(tablesOf("faces-01-no-routes"), {
        from: { namespace: "faces", name: "nope" },
        to: { namespace: "faces", name: "smiley", port: 80 },
      }).verdict,
    ).toMatch(/in no node table/);
  });

  it("ranks gRPC matches and answers 404 / UNIMPLEMENTED when none matches", () => {
    const to = { namespace: "faces", name: "color", port: 80 };
    const matches = (grpc: { service: string; method: string }, headers: [string, string][] = []) =>
      explain("grpc-matches", { to, grpc, headers }).matched;
    // Exact service+method with a header beats the regex and the service-only match.
    expect(matches({ service: "ColorService", method: "Center" }, [["x-faces-user", "heart"]])).toContain(
      "rule 2",
    );
    // Without the header a longer exact service (12 characters) beats the regex (7).
    expect(matches({ service: "ColorService", method: "Center" })).toContain("rule 1");
    expect(matches({ service: "Colorful", method: "Center" })).toBe(
      "Color.*/Ce.* (regex) → GRPCRoute faces/color-matches rule 2",
    );
    expect(matches({ service: "ColorService", method: "Edge" })).toContain("rule 1");
    expect(matches({ service: "Other", method: "Edge" })).toContain("rule 0");
    expect(matches({ service: "Other", method: "X" }, [["x-faces-user", "hugo"]])).toContain("rule 3");
    const none = explain("grpc-matches", { to, grpc: { service: "Other", method: "X" } });
    expect(none.verdict).toMatch(/^no rule matches: 404 \/ grpc-status 12/);
  });
});

describe("parseExplainRequest", () => {
  it("reads the forms the CLI accepts", () => {
    expect(
      parseExplainRequest({
        from: "faces/face-0",
        to: "color.faces.svc.cluster.local:80",
        headers: ["x-faces-user=heart", "X-B: 1"],
        grpc: "ColorService/Center",
      }),
    ).toEqual({
      from: { namespace: "faces", name: "face-0" },
      to: { namespace: "faces", name: "color", port: 80 },
      headers: [
        ["x-faces-user", "heart"],
        ["X-B", "1"],
      ],
      grpc: { service: "ColorService", method: "Center" },
    });
    expect(parseExplainRequest({ from: "faces/face-0", to: "smiley:80" })).toMatchObject({
      to: { namespace: "faces", name: "smiley", port: 80 },
    });
    expect(parseExplainRequest({ from: "faces/face-0", to: "other/smiley:80" })).toMatchObject({
      to: { namespace: "other", name: "smiley", port: 80 },
    });
    expect(parseExplainRequest({ from: "face-0", to: "smiley:80" })).toHaveProperty("error");
    expect(parseExplainRequest({ from: "faces/face-0", to: "smiley" })).toHaveProperty("error");
  });
});
