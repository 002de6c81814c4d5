// A request body that can be sent more than once (retries, mirrors) while it
// is small. Data is forwarded to the current try as it arrives — a streaming
// call is never held back waiting for its end — and a copy is kept until the
// size limit; past the limit the copy is dropped and the body is no longer
// replayable, so the request is not retried.

import type { Readable, Writable } from "node:stream";

export class RequestBody {
  readonly #source: Readable;
  readonly #limit: number;
  #chunks: Buffer[] | null = [];
  #size = 0;
  #ended = false;
  #sink: Writable | null = null;
  #paused = false;
  #onComplete: (() => void)[] = [];

  constructor(source: Readable, limit: number) {
    this.#source = source;
    this.#limit = limit;
    source.on("data", (chunk: Buffer) => this.#onData(chunk));
    source.on("end", () => this.#onEnd());
  }

  /** True while every byte received so far is kept. */
  get replayable(): boolean {
    return this.#chunks !== null;
  }

  /** The whole body, when it has ended within the limit. */
  get complete(): Buffer[] | null {
    return this.#ended ? this.#chunks : null;
  }

  /** Calls `fn` once the body has ended (at once if it has). */
  whenEnded(fn: () => void): void {
    if (this.#ended) fn();
    else this.#onComplete.push(fn);
  }

  /** Makes `sink` the current try's destination: replays what was kept, then follows the source. */
  attach(sink: Writable): boolean {
    if (this.#chunks === null && this.#size > 0) return false;
    this.detach();
    this.#sink = sink;
    if (this.#chunks !== null) for (const c of this.#chunks) sink.write(c);
    if (this.#ended) sink.end();
    return true;
  }

  detach(): void {
    this.#sink = null;
    if (this.#paused) {
      this.#paused = false;
      this.#source.resume();
    }
  }

  #onData(chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#chunks !== null) {
      if (this.#size > this.#limit) this.#chunks = null;
      else this.#chunks.push(chunk);
    }
    const sink = this.#sink;
    if (sink !== null && !sink.write(chunk)) {
      this.#paused = true;
      this.#source.pause();
      sink.once("drain", () => {
        if (this.#sink === sink && this.#paused) {
          this.#paused = false;
          this.#source.resume();
        }
      });
    }
  }

  #onEnd(): void {
    this.#ended = true;
    this.#sink?.end();
    const fns = this.#onComplete;
    this.#onComplete = [];
    for (const fn of fns) fn();
  }
}
