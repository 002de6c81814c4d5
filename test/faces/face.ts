// Entry point of the face workload: `node test/faces/face.ts`.
// SMILEY_SERVICE (default "smiley") and COLOR_SERVICE (default "color:80") say where its upstreams are.
import { createLogger } from "./lib/logger.ts";
import { exitOnSignals } from "./lib/shutdown.ts";
import { readWorkloadConfig } from "./lib/workload-config.ts";
import { startFace } from "./servers/face-server.ts";

const config = readWorkloadConfig();
const logger = createLogger("face", config.pod);
const smileyService = process.env.SMILEY_SERVICE || "smiley";
const colorService = process.env.COLOR_SERVICE || "color:80";
exitOnSignals(await startFace({ ...config, smileyService, colorService, logger }), logger);
