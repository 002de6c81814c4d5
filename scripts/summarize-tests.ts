// Sums vitest JSON reports into the plain closing line CI reads:
// "N passed, N failed, N skipped". Lint counts as one check that passed or failed.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

interface VitestJson {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numFailedTestSuites: number;
}

const [dir = ".artifacts/test", lintFailed = "0"] = process.argv.slice(2);
let passed = lintFailed === "0" ? 1 : 0;
let failed = lintFailed === "0" ? 0 : 1;
let skipped = 0;
for (const f of existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith(".json")) : []) {
  const r = JSON.parse(readFileSync(path.join(dir, f), "utf8")) as VitestJson;
  passed += r.numPassedTests;
  // A suite that failed to load has no failed tests but must still fail the run.
  failed += r.numFailedTests + (r.numFailedTests === 0 ? r.numFailedTestSuites : 0);
  skipped += r.numPendingTests + r.numTodoTests;
}
process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exitCode = failed > 0 ? 1 : 0;
