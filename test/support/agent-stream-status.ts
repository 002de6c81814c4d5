// Opens one AgentStream by hand, says Hello, and returns the status the
// controller ended it with: how the tests see a refusal an agent would get.
import * as grpc from "@grpc/grpc-js";
import { AgentStreamClient } from "@trellis/api";

export function agentStreamStatus(opts: {
  address: string;
  caPem: string;
  serverName: string;
  token: string | undefined;
  node: string;
}): Promise<grpc.StatusObject> {
  const client = new AgentStreamClient(opts.address, grpc.credentials.createSsl(Buffer.from(opts.caPem)), {
    "grpc.ssl_target_name_override": opts.serverName,
  });
  const md = new grpc.Metadata();
  if (opts.token) md.set("authorization", `Bearer ${opts.token}`);
  const call = client.connect(md);
  call.on("error", () => {});
  call.write({ message: { $case: "hello", hello: { node: opts.node, agentVersion: "test" } } });
  return new Promise((done) =>
    call.on("status", (s) => {
      client.close();
      done(s);
    }),
  );
}
