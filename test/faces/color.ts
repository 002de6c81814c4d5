// Entry point of the color workload (gRPC ColorService, h2c): `node test/faces/color.ts`.
// COLOR picks the colour (blue, green, darkblue, grey, red, purple, yellow; default blue).
import { DEFAULT_COLOR, isColorName } from "./lib/catalog.ts";
import { createLogger } from "./lib/logger.ts";
import { exitOnSignals } from "./lib/shutdown.ts";
import { readWorkloadConfig } from "./lib/workload-config.ts";
import { startColor } from "./servers/color-server.ts";

const config = readWorkloadConfig();
const logger = createLogger("color", config.pod);
const wanted = process.env.COLOR || DEFAULT_COLOR;
const color = isColorName(wanted) ? wanted : DEFAULT_COLOR;
if (color !== wanted) logger.warn({ COLOR: wanted, using: color }, "unknown COLOR, using the default");
exitOnSignals(await startColor({ ...config, color, logger }), logger);
