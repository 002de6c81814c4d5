// The only place the agent runs nft: one `nft -f -` per change, the script on
// stdin (never on a command line), one transaction at a time.
import { spawn } from "node:child_process";
import { type CaptureState, NFT_TABLE, nftRemoveScript, nftScript } from "./nft-script.ts";

export class NftError extends Error {}

export class NftProgram {
  readonly #nft: readonly string[];
  #last: string | null = null;
  #queue: Promise<unknown> = Promise.resolve();

  /** `nft` is the command that runs nft: a path, or a prefix such as `ip netns exec <ns> nft` in tests. */
  constructor(nft: string | readonly string[] = "nft") {
    this.#nft = typeof nft === "string" ? [nft] : nft;
  }

  /** Makes the kernel's state equal `state`; resolves to whether anything was written. */
  apply(state: CaptureState): Promise<boolean> {
    return this.#serial(async () => {
      const script = nftScript(state);
      if (script === this.#last) return false;
      await this.#run(["-f", "-"], script);
      this.#last = script;
      return true;
    });
  }

  /** Removes the agent's tables (uninstall; never on a plain restart). */
  remove(): Promise<void> {
    return this.#serial(async () => {
      await this.#run(["-f", "-"], nftRemoveScript());
      this.#last = null;
    });
  }

  /** The agent's table of `family` as `nft -j` prints it, or null when there is none. */
  list(family: "ip" | "ip6" = "ip"): Promise<unknown> {
    return this.#serial(async () => {
      try {
        return JSON.parse(await this.#run(["-j", "list", "table", family, NFT_TABLE], "")) as unknown;
      } catch (err) {
        if (err instanceof NftError && /No such file or directory/.test(err.message)) return null;
        throw err;
      }
    });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  #run(args: string[], input: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const [command = "nft", ...prefix] = this.#nft;
      const child = spawn(command, [...prefix, ...args], { stdio: ["pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (b: Buffer) => out.push(b));
      child.stderr.on("data", (b: Buffer) => err.push(b));
      child.on("error", (e) =>
        reject(new NftError(`cannot run ${command}: ${e.message}; is nftables installed?`)),
      );
      child.on("close", (code) => {
        if (code === 0) resolve(Buffer.concat(out).toString("utf8"));
        else
          reject(
            new NftError(
              `nft ${args.join(" ")} exited ${code}: ${Buffer.concat(err).toString("utf8").trim()}`,
            ),
          );
      });
      child.stdin.on("error", () => {});
      child.stdin.end(input);
    });
  }
}
