// node:http loaded with require() instead of an ESM import. The ESM facade of a
// built-in module reads every one of its exports, and node:http's WebSocket,
// CloseEvent and MessageEvent are lazy getters that load Node's bundled undici
// and web streams: ≈ 12 MB of RSS for an agent that uses none of them
// (measured with process.moduleLoadList and /proc/self/status). require()
// returns the plain module object and leaves those getters untouched.

import type * as NodeHttp from "node:http";
import { createRequire } from "node:module";

export const http = createRequire(import.meta.url)("node:http") as typeof NodeHttp;
