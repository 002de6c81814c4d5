// The webhook adapter: POSTs a Canary's webhook body as JSON and reduces the
// answer to pass/fail with a short reason. Never throws: a refused
// connection, a timeout or a non-2xx answer is a failed result, which the
// pure state machine (canary.ts) counts.
import type { CanaryWebhook, WebhookBody, WebhookCall, WebhookResult } from "./canary.ts";

/** How much of a failing answer's body goes into status and Events. */
const BODY_EXCERPT_CHARS = 160;

export type PostWebhook = (hook: CanaryWebhook, body: WebhookBody) => Promise<WebhookResult>;

export const postWebhook: PostWebhook = async (hook, body) => {
  const started = performance.now();
  const took = () => `${Math.round(performance.now() - started)} ms`;
  try {
    const res = await fetch(hook.url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "trellis-controller" },
      body: JSON.stringify(body),
      // A redirect is an answer, not a pass: following it could leave the cluster.
      redirect: "manual",
      signal: AbortSignal.timeout(hook.timeoutMs),
    });
    const text = await res.text().catch(() => "");
    if (res.status >= 200 && res.status < 300)
      return { name: hook.name, ok: true, message: `HTTP ${res.status} in ${took()}` };
    const excerpt = text.replace(/\s+/g, " ").trim().slice(0, BODY_EXCERPT_CHARS);
    return {
      name: hook.name,
      ok: false,
      message: `HTTP ${res.status} in ${took()}${excerpt ? `: ${excerpt}` : ""}`,
    };
  } catch (err) {
    return { name: hook.name, ok: false, message: failureText(err, hook) };
  }
};

function failureText(err: unknown, hook: CanaryWebhook): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError")
    return `no answer within ${hook.timeoutMs / 1000} s (timeoutSeconds)`;
  const cause = e.cause?.code ?? e.cause?.message;
  return `cannot POST to ${hook.url}: ${cause ?? e.message ?? String(err)}`;
}

/** Calls every webhook of a call concurrently, each with the body and its own metadata. */
export async function callWebhooks(
  call: WebhookCall,
  post: PostWebhook = postWebhook,
): Promise<WebhookResult[]> {
  return Promise.all(call.hooks.map((hook) => post(hook, { ...call.body, metadata: hook.metadata })));
}
