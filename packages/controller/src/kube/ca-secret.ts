// The agent-channel CA lives in a Secret so every controller replica (and
// restart) serves a certificate agents already trust. The first replica to
// start creates it; a replica losing the create race reads the winner's.
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { createCA, type PemPair } from "../distribute/channel-pki.ts";

const CERT = "ca.crt";
const KEY = "ca.key";

function decode(data: Record<string, string> | undefined): PemPair | undefined {
  const cert = data?.[CERT];
  const key = data?.[KEY];
  if (!cert || !key) return undefined;
  return {
    certPem: Buffer.from(cert, "base64").toString("utf8"),
    keyPem: Buffer.from(key, "base64").toString("utf8"),
  };
}

export async function loadOrCreateCA(kc: KubeConfig, namespace: string, name: string): Promise<PemPair> {
  const api = kc.makeApiClient(CoreV1Api);
  try {
    const found = decode((await api.readNamespacedSecret({ name, namespace })).data);
    if (found) return found;
    throw new Error(
      `Secret ${namespace}/${name} exists but lacks ${CERT}/${KEY}; delete it to let the controller recreate it`,
    );
  } catch (err) {
    if ((err as { code?: unknown }).code !== 404) throw err;
  }
  const ca = await createCA("trellis-agent-channel-ca");
  try {
    await api.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name, labels: { "app.kubernetes.io/part-of": "trellis" } },
        type: "Opaque",
        data: {
          [CERT]: Buffer.from(ca.certPem).toString("base64"),
          [KEY]: Buffer.from(ca.keyPem).toString("base64"),
        },
      },
    });
    return ca;
  } catch (err) {
    if ((err as { code?: unknown }).code !== 409) throw err;
    const winner = decode((await api.readNamespacedSecret({ name, namespace })).data);
    if (!winner) throw new Error(`Secret ${namespace}/${name} appeared without ${CERT}/${KEY}`);
    return winner;
  }
}

/** The CA certificate alone, published for agents (they must never see the key). */
export async function publishCABundle(
  kc: KubeConfig,
  namespace: string,
  name: string,
  certPem: string,
): Promise<void> {
  const api = kc.makeApiClient(CoreV1Api);
  const body = {
    metadata: { name, labels: { "app.kubernetes.io/part-of": "trellis" } },
    data: { [CERT]: certPem },
  };
  try {
    const cm = await api.readNamespacedConfigMap({ name, namespace });
    if (cm.data?.[CERT] === certPem) return;
    await api.replaceNamespacedConfigMap({
      name,
      namespace,
      body: { ...body, metadata: { ...body.metadata, resourceVersion: cm.metadata?.resourceVersion } },
    });
  } catch (err) {
    if ((err as { code?: unknown }).code !== 404) throw err;
    await api.createNamespacedConfigMap({ namespace, body });
  }
}
