// Certificates for the cluster-in-a-box, made with the openssl CLI (Node has
// no X.509 issuing API). One CA signs everything; identities follow the
// names Kubernetes' default RBAC and Node authorizer expect.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface CertSpec {
  /** File stem: `<name>.crt` / `<name>.key`. */
  name: string;
  cn: string;
  org?: string;
  server?: { dns: string[]; ips: string[] };
}

function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}

export function createCA(dir: string): void {
  mkdirSync(dir, { recursive: true });
  openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    path.join(dir, "ca.key"),
    "-out",
    path.join(dir, "ca.crt"),
    "-days",
    "3650",
    "-subj",
    "/CN=trellis-box-ca",
  ]);
  // ServiceAccount token signing key pair (RS256 is what every client expects).
  openssl(["genrsa", "-out", path.join(dir, "sa.key"), "2048"]);
  openssl(["rsa", "-in", path.join(dir, "sa.key"), "-pubout", "-out", path.join(dir, "sa.pub")]);
}

export function issueCert(dir: string, spec: CertSpec): void {
  const key = path.join(dir, `${spec.name}.key`);
  const csr = path.join(dir, `${spec.name}.csr`);
  const ext = path.join(dir, `${spec.name}.ext`);
  const subject = `${spec.org ? `/O=${spec.org}` : ""}/CN=${spec.cn}`;
  openssl([
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    key,
    "-out",
    csr,
    "-subj",
    subject,
  ]);
  const lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"];
  if (spec.server) {
    const sans = [...spec.server.dns.map((d) => `DNS:${d}`), ...spec.server.ips.map((i) => `IP:${i}`)];
    lines.push("extendedKeyUsage=serverAuth,clientAuth", `subjectAltName=${sans.join(",")}`);
  } else {
    lines.push("extendedKeyUsage=clientAuth");
  }
  writeFileSync(ext, `${lines.join("\n")}\n`);
  openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    path.join(dir, "ca.crt"),
    "-CAkey",
    path.join(dir, "ca.key"),
    "-CAcreateserial",
    "-days",
    "365",
    "-extfile",
    ext,
    "-out",
    path.join(dir, `${spec.name}.crt`),
  ]);
}

export function kubeconfigFor(pkiDir: string, certName: string, server: string): string {
  // File references rather than embedded data keep these readable when debugging.
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: trellis-box",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority: ${path.join(pkiDir, "ca.crt")}`,
    "users:",
    `- name: ${certName}`,
    "  user:",
    `    client-certificate: ${path.join(pkiDir, `${certName}.crt`)}`,
    `    client-key: ${path.join(pkiDir, `${certName}.key`)}`,
    "contexts:",
    "- name: trellis-box",
    "  context:",
    "    cluster: trellis-box",
    `    user: ${certName}`,
    "current-context: trellis-box",
    "",
  ].join("\n");
}
