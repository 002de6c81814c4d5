import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

// The committed src/gen must be exactly what `pnpm --filter @trellis/api generate`
// produces from the .proto files, so nobody edits generated code by hand and
// nobody forgets to regenerate after changing the contract.
const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const scratch = mkdtempSync(join(tmpdir(), "trellis-api-gen-"));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

describe("generated contract code", () => {
  it("matches a fresh buf generate byte for byte", () => {
    const buf = join(packageDir, "node_modules", ".bin", "buf");
    const result = spawnSync(buf, ["generate", "--output", scratch], {
      cwd: packageDir,
      encoding: "utf8",
      // The ts-proto plugin runs on `node`; use the Node running the tests.
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` },
    });
    expect(result.error).toBeUndefined();
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);

    const committed = join(packageDir, "src", "gen");
    const fresh = join(scratch, "src", "gen");
    expect(filesUnder(fresh)).toEqual(filesUnder(committed));
    for (const file of filesUnder(committed)) {
      const want = readFileSync(join(fresh, file));
      const have = readFileSync(join(committed, file));
      expect(have.equals(want), `${file} differs: run \`pnpm --filter @trellis/api generate\``).toBe(true);
    }
  });
});
