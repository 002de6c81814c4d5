// The controller's view of the cluster: latest plain JSON of every watched
// object, keyed by kind/namespace/name. Informers write; recompute reads a
// consistent copy. Listeners hear "something changed", never which object:
// recompute is whole-snapshot by design (resolve is fast, and it keeps the
// semantics in one pure function).
export class ObjectStore {
  #objects = new Map<string, Record<string, unknown>>();
  #listeners: Array<() => void> = [];

  static key(kind: string, obj: { metadata?: { namespace?: string; name?: string } }): string {
    return `${kind}/${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
  }

  upsert(
    kind: string,
    obj: Record<string, unknown> & { metadata?: { namespace?: string; name?: string } },
  ): void {
    this.#objects.set(ObjectStore.key(kind, obj), obj);
    this.#notify();
  }

  remove(kind: string, obj: { metadata?: { namespace?: string; name?: string } }): void {
    if (this.#objects.delete(ObjectStore.key(kind, obj))) this.#notify();
  }

  /** Replaces every object of one kind (after a relist). */
  replaceKind(kind: string, objs: ReadonlyArray<Record<string, unknown>>): void {
    for (const k of [...this.#objects.keys()]) if (k.startsWith(`${kind}/`)) this.#objects.delete(k);
    for (const o of objs) this.#objects.set(ObjectStore.key(kind, o as { metadata?: { name?: string } }), o);
    this.#notify();
  }

  get(kind: string, namespace: string, name: string): Record<string, unknown> | undefined {
    return this.#objects.get(`${kind}/${namespace}/${name}`);
  }

  snapshot(): Record<string, unknown>[] {
    return [...this.#objects.values()];
  }

  countByKind(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const k of this.#objects.keys()) {
      const kind = k.slice(0, k.indexOf("/"));
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
    return counts;
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  #notify(): void {
    for (const l of this.#listeners) l();
  }
}
