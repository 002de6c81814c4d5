// Entry point of the faces-gui workload: `node test/faces/faces-gui.ts`.
// Serves the page and proxies /face/… to FACE_SERVICE (default "face").
import { createLogger } from "./lib/logger.ts";
import { exitOnSignals } from "./lib/shutdown.ts";
import { readWorkloadConfig } from "./lib/workload-config.ts";
import { GUI_DIR, startGui } from "./servers/gui-server.ts";

const config = readWorkloadConfig();
const logger = createLogger("faces-gui", config.pod);
const faceService = process.env.FACE_SERVICE || "face";
exitOnSignals(await startGui({ ...config, faceService, guiDir: GUI_DIR, logger }), logger);
