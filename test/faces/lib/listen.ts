// Starts an HTTP server listening; resolves with the bound port (useful when asked for port 0).
import type http from "node:http";
import type { AddressInfo } from "node:net";

export function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => {
      server.off("error", fail);
      done((server.address() as AddressInfo).port);
    });
  });
}

/** Closes a server, dropping idle keep-alive connections so close() does not wait for them. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise((done) => {
    server.close(() => done());
    server.closeIdleConnections();
  });
}
