// What a container runs: image entrypoint/cmd combined with the container's
// command/args (Kubernetes semantics), with $(VAR) references expanded.
import type { ImageSpec } from "../images.ts";
import type { Container } from "./k8s-types.ts";

/**
 * Kubernetes' $(VAR) expansion (k8s.io/kubernetes third_party expansion):
 * `$(NAME)` becomes the variable's value when defined and stays as written
 * otherwise; `$$` is an escaped `$`; an unterminated `$(` is kept literally.
 */
export function expandVars(input: string, lookup: (name: string) => string | undefined): string {
  let out = "";
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== "$" || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let advance: number;
    if (rest[0] === "$") {
      out += "$";
      advance = 1;
    } else if (rest[0] === "(") {
      const close = rest.indexOf(")");
      if (close === -1) {
        out += `$${rest}`;
        advance = rest.length;
      } else {
        const name = rest.slice(1, close);
        out += lookup(name) ?? `$(${name})`;
        advance = close + 1;
      }
    } else {
      out += `$${rest[0]}`;
      advance = 1;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

/**
 * The argv of a container:
 * - no command, no args: image entrypoint + image cmd
 * - args only: image entrypoint + args
 * - command (with or without args): command + args (the image cmd is dropped)
 */
export function resolveCommand(
  image: ImageSpec,
  container: Pick<Container, "command" | "args">,
  env: Readonly<Record<string, string>>,
): string[] {
  const expand = (s: string) => expandVars(s, (name) => env[name]);
  const command = container.command?.map(expand);
  const args = container.args?.map(expand);
  let argv: string[];
  if (command && command.length > 0) argv = [...command, ...(args ?? [])];
  else if (args && args.length > 0) argv = [...image.entrypoint, ...args];
  else argv = [...image.entrypoint, ...image.cmd];
  if (argv.length === 0) throw new Error("no command specified (image has no entrypoint or cmd)");
  return argv;
}
