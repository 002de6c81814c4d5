// The faces GUI in a real browser (Debian's chromium, headless, driven by
// playwright-core) against the meshed cluster-in-a-box: a full grid, then
// routes applied with kubectl change the cells the page shows. Screenshots
// go to artifacts/faces/; with UPDATE_SCREENSHOTS=1 they replace the ones
// docs/faces-walkthrough.md shows (docs/images/faces/).
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { kubectl } from "../cluster/box.ts";
import { TRELLIS_ROOT } from "../cluster/layout.ts";
import { installTrellis, uninstallTrellis } from "../cluster/trellis-install.ts";
import { deployFaces, FACES_NAMESPACE, FACES_ROUTES_DIR, guiAddress } from "../support/faces-cluster.ts";

// The callbacks below run in the page; this is the little of the DOM they use.
declare const document: {
  querySelectorAll(selector: string): ArrayLike<{ getAttribute(name: string): string | null }>;
};

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = join(
  TRELLIS_ROOT,
  process.env.UPDATE_SCREENSHOTS === "1" ? "docs/images/faces" : "artifacts/faces",
);
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium)
  console.warn(`faces-browser: skipped: ${CHROMIUM} is missing (scripts/bootstrap.sh installs it)`);

let browser: Browser | undefined;
let page: Page;

/** Waits until every cell shows `value` (polling the DOM); returns how long it took. */
async function allCells(
  attr: "data-smiley" | "data-color",
  value: string,
  timeoutMs = 15_000,
): Promise<number> {
  const t0 = Date.now();
  await page.waitForFunction(
    ([a, v]) => {
      const cells = Array.from(document.querySelectorAll("#grid .cell"));
      return cells.length === 16 && cells.every((c) => c.getAttribute(a as string) === v);
    },
    [attr, value],
    { timeout: timeoutMs, polling: 50 },
  );
  return Date.now() - t0;
}

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

describe.skipIf(!haveChromium)("faces GUI in a browser", () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    await installTrellis({ debugHeaders: true });
    await deployFaces();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(`${guiAddress()}/`);
  });

  afterAll(async () => {
    await browser?.close();
    kubectl(["delete", "namespace", FACES_NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=120s"]);
    await uninstallTrellis();
  });

  // Each step starts from the plain grid, whatever the one before left.
  afterEach(async () => {
    kubectl(["-n", FACES_NAMESPACE, "delete", "httproute,grpcroute", "--all"]);
    await page.fill("#user", "");
    await allCells("data-smiley", "Grinning");
    await allCells("data-color", "#66CCEE");
  });

  it("shows a full grid of grinning faces on blue", async () => {
    await page.waitForSelector('#grid[data-ready="true"]', { timeout: 60_000 });
    await allCells("data-smiley", "Grinning", 30_000);
    await allCells("data-color", "#66CCEE", 30_000);
    await shot("01-grinning-on-blue");
  });

  it("turns every cell to heart-eyes within a few seconds of kubectl apply of the smiley route, showing the route", async () => {
    kubectl(["apply", "-f", join(FACES_ROUTES_DIR, "02-smiley-route.yaml")]);
    const t0 = Date.now();
    await page.waitForSelector('#grid .cell[data-smiley="HeartEyes"]', { timeout: 10_000 });
    const first = Date.now() - t0;
    const ms = first + (await allCells("data-smiley", "HeartEyes"));
    console.log(
      `faces-browser: first cell heart-eyes ${first} ms, all 16 cells ${ms} ms after kubectl apply returned`,
    );
    // Each cell polls every 2 s and smiley may take up to 1.5 s (its delay buckets): a
    // correct mesh has turned every cell within 2 s + 1.5 s + propagation.
    expect(ms).toBeLessThan(5_000);
    const routes = await page.$$eval("#grid .cell", (cells) =>
      cells.map((c) => c.getAttribute("data-smiley-route")),
    );
    expect(new Set(routes)).toEqual(new Set([`${FACES_NAMESPACE}/smiley#0`]));
    await shot("02-smiley-route-heart-eyes");
  });

  it("turns the cells green with the color GRPCRoute, and the legend counts them", async () => {
    kubectl(["apply", "-f", join(FACES_ROUTES_DIR, "02-smiley-route.yaml")]);
    kubectl(["apply", "-f", join(FACES_ROUTES_DIR, "03-color-route.yaml")]);
    await allCells("data-color", "#228833");
    await allCells("data-smiley", "HeartEyes");
    // The legend lists the colours of the last 10 s of answers, green among them now.
    await page.waitForSelector('li[data-legend="color"][data-name="#228833"]', { timeout: 10_000 });
    await shot("03-color-route-green");
  });

  it("shows edges and centre apart with smiley-edge", async () => {
    kubectl(["apply", "-f", join(FACES_ROUTES_DIR, "06-smiley-edge.yaml")]);
    await page.waitForFunction(
      () =>
        Array.from(document.querySelectorAll("#grid .cell")).every(
          (c) =>
            c.getAttribute("data-smiley") ===
            (c.getAttribute("data-kind") === "edge" ? "HeartEyes" : "Grinning"),
        ),
      undefined,
      { timeout: 15_000, polling: 50 },
    );
    await shot("06-smiley-edge");
  });

  it("shows heart-eyes only to user heart with smiley-a-b", async () => {
    kubectl(["apply", "-f", join(FACES_ROUTES_DIR, "09-smiley-a-b.yaml")]);
    await allCells("data-smiley", "Grinning");
    await page.fill("#user", "heart");
    await allCells("data-smiley", "HeartEyes");
    await shot("09-smiley-a-b-user-heart");
  });
});
