import { describe, expect, it } from "vitest";
import type { ImageSpec } from "../../cluster/images.ts";
import { imageRepository, lookupImage } from "../../cluster/images.ts";
import { expandVars, resolveCommand } from "../../cluster/sim/command.ts";

const image: ImageSpec = { entrypoint: ["/bin/server"], cmd: ["--default"] };

describe("resolveCommand", () => {
  it("uses entrypoint + cmd without command and args", () => {
    expect(resolveCommand(image, {}, {})).toEqual(["/bin/server", "--default"]);
  });
  it("replaces cmd with args", () => {
    expect(resolveCommand(image, { args: ["--port", "9090"] }, {})).toEqual([
      "/bin/server",
      "--port",
      "9090",
    ]);
  });
  it("replaces entrypoint and drops cmd with command", () => {
    expect(resolveCommand(image, { command: ["/bin/other"] }, {})).toEqual(["/bin/other"]);
  });
  it("uses command + args when both are given", () => {
    expect(resolveCommand(image, { command: ["sh", "-c"], args: ["echo hi"] }, {})).toEqual([
      "sh",
      "-c",
      "echo hi",
    ]);
  });
  it("expands $(VAR) from the container env", () => {
    expect(resolveCommand(image, { args: ["--port=$(PORT)", "$(MISSING)"] }, { PORT: "8080" })).toEqual([
      "/bin/server",
      "--port=8080",
      "$(MISSING)",
    ]);
  });
  it("refuses an empty command", () => {
    expect(() => resolveCommand({ entrypoint: [], cmd: [] }, {}, {})).toThrow(/no command/);
  });
});

describe("expandVars", () => {
  const env: Record<string, string> = { A: "1", B: "two" };
  const lookup = (n: string) => env[n];
  it.each([
    ["$(A)", "1"],
    ["x$(A)y$(B)z", "x1ytwoz"],
    ["$$(A)", "$(A)"],
    ["$$$(A)", "$1"],
    ["$(UNKNOWN)", "$(UNKNOWN)"],
    ["$(A", "$(A"],
    ["$A", "$A"],
    ["cost: 5$", "cost: 5$"],
    ["", ""],
  ])("%s → %s", (input, out) => {
    expect(expandVars(input, lookup)).toBe(out);
  });
});

describe("images", () => {
  it("strips tags and digests", () => {
    expect(imageRepository("trellis.local/echo:1.2")).toBe("trellis.local/echo");
    expect(imageRepository("trellis.local/echo@sha256:abc")).toBe("trellis.local/echo");
    expect(imageRepository("localhost:5000/echo")).toBe("localhost:5000/echo");
  });
  it("maps the echo image to node running echo.ts", () => {
    const echo = lookupImage("trellis.local/echo:latest");
    expect(echo?.entrypoint[0]).toBe(process.execPath);
    expect(echo?.entrypoint[1]).toMatch(/test\/workloads\/echo\.ts$/);
  });
});
