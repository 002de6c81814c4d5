// Entry point of the smiley workload: `node test/faces/smiley.ts`.
// SMILEY picks the face (Grinning, HeartEyes, RollingEyes, Sleeping, Cursing; default Grinning).
import { DEFAULT_SMILEY, isSmileyName } from "./lib/catalog.ts";
import { createLogger } from "./lib/logger.ts";
import { exitOnSignals } from "./lib/shutdown.ts";
import { readWorkloadConfig } from "./lib/workload-config.ts";
import { startSmiley } from "./servers/smiley-server.ts";

const config = readWorkloadConfig();
const logger = createLogger("smiley", config.pod);
const wanted = process.env.SMILEY || DEFAULT_SMILEY;
const smiley = isSmileyName(wanted) ? wanted : DEFAULT_SMILEY;
if (smiley !== wanted) logger.warn({ SMILEY: wanted, using: smiley }, "unknown SMILEY, using the default");
exitOnSignals(await startSmiley({ ...config, smiley, logger }), logger);
