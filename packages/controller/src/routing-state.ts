// The controller's routing state: watched objects in, node tables and route
// statuses out, recomputing only what a change can affect.
//
// It runs the same pure pieces as the from-scratch path (computeTables:
// buildSnapshot → resolveRoutes → compileNodeTables) and must give the same
// result for the same objects, whatever sequence of changes led there (a
// property test checks exactly that). What it adds is bookkeeping:
// - which Services each route's compiled form and parent bindings read, so a
//   Service change recompiles and rebinds only the routes that named it;
// - per Service, the routes bound to it, so a route change re-resolves only
//   the Services it is (or was) bound to;
// - parts shared between node tables: one Service message per meshed service
//   (plus a variant per set of consumer namespaces when it has consumer
//   routes), one Backend message per service port, one LocalPod per pod. A
//   part that is recomputed but encodes to the same bytes keeps its old
//   object, and so do the lists holding parts, so "same object" means "same
//   content" all the way up: a node's table object changes exactly when its
//   content changes, and tables that share lists share their bytes and
//   digests (see distribute/table-bytes.ts).
// Parts are never mutated once built; everything returned is read-only.
import type { AgentSettings, Backend, LocalPod, NodeTable, Service } from "@trellis/api";
import { capturedNamespaces, namespaceCaptured } from "./compile/capture.ts";
import {
  type CompileOptions,
  clientNamespaces,
  consumerNamespaces,
  DEFAULT_AGENT_SETTINGS,
  isLocalPod,
  localPod,
  meshedService,
  serviceBackendIds,
  serviceForClients,
  UNVERSIONED,
} from "./compile/compile-node-tables.ts";
import { backendBytes, serviceBytes } from "./distribute/table-bytes.ts";
import { buildBackend, parseBackendId } from "./resolve/backends.ts";
import type { Resolution, RouteStatus } from "./resolve/resolution.ts";
import { type CompiledRoute, compileRoute } from "./resolve/route-rules.ts";
import {
  attachmentFor,
  bindRouteParents,
  type ConflictOutcome,
  compareRouteStatuses,
  hasClusterIP,
  type ParentState,
  resolveServiceRoutes,
  routeStatus,
  type ServiceAttachment,
  type ServiceRoutes,
} from "./resolve/service-routes.ts";
import { objectIdentity, type ReadObject, readObject, routeKey } from "./snapshot/build-snapshot.ts";
import {
  type EndpointSliceObject,
  type NamespaceObject,
  objectKey,
  type PodObject,
  type RouteObject,
  type ServiceObject,
  type SnapshotIssue,
} from "./snapshot/snapshot.ts";
import { compareStrings } from "./sort-order.ts";

/** An object added or changed (Kubernetes JSON), or deleted (then only its identity is read). */
export interface ObjectChange {
  readonly object: unknown;
  readonly deleted?: boolean;
}

export interface RoutingUpdate {
  /** Nodes whose table is a new object (its content changed), sorted. */
  readonly changedNodes: readonly string[];
  /** Nodes that no longer have a table, sorted. */
  readonly removedNodes: readonly string[];
  /** Routes whose status changed (or that were removed), as "<kind>/<namespace>/<name>". */
  readonly changedRoutes: readonly string[];
  /** Issues of the objects in this change, for logging. */
  readonly issues: readonly SnapshotIssue[];
}

/** A meshed Service's parts: what each node's table holds for it. */
interface ServicePart {
  /** Every route set: the source of the variants. */
  readonly meshed: Service;
  /** Namespaces with consumer route sets here, sorted; usually none. */
  readonly consumers: readonly string[];
  /** What a node without clients in `consumers` holds (`meshed` itself when there are no consumers). */
  readonly producerOnly: Service;
  readonly producerOnlyBackendIds: readonly string[];
  /** Per sorted list of relevant consumer namespaces (joined by ","), filled on demand. */
  readonly variants: Map<string, ServiceVariant>;
  /** The variants of the part this one replaced: reused when equal, so unchanged node lists stay the same objects. */
  readonly previousVariants: ReadonlyMap<string, ServiceVariant> | undefined;
}

interface PartChange {
  readonly key: string;
  readonly old: ServicePart | undefined;
  readonly part: ServicePart | undefined;
}

interface ServiceVariant {
  readonly service: Service;
  readonly backendIds: readonly string[];
}

interface BackendEntry {
  readonly service: ServiceObject;
  readonly slices: readonly EndpointSliceObject[] | undefined;
  readonly backend: Backend;
}

interface NodeState {
  readonly localPods: readonly LocalPod[];
  readonly clients: ReadonlySet<string>;
  /** #consumerEpoch when `substitutions` were worked out. */
  readonly consumerEpoch: number;
  readonly substitutions: Substitutions;
  /** The shared lists the table was built on. */
  readonly baseServices: readonly Service[];
  readonly baseBackends: readonly Backend[];
  readonly table: NodeTable;
}

interface Substitutions {
  /** Positions in the base services list and the variant that replaces the base part there. */
  readonly list: readonly { readonly index: number; readonly service: Service }[];
  /** Backend ids the variants refer to, sorted (the ones outside the base list are added for this node). */
  readonly extraIds: readonly string[];
}

const NO_SLICES: readonly EndpointSliceObject[] = [];

export class RoutingState {
  readonly #settings: AgentSettings;
  readonly #version: NodeTable["version"];

  // Inputs, by identity key and by kind.
  readonly #entries = new Map<string, ReadObject>();
  readonly #namespaces = new Map<string, NamespaceObject>();
  /** Shared by every table until it changes, so an unchanged list keeps tables unchanged. */
  #capturedNamespaces: readonly string[] = [];
  readonly #services = new Map<string, ServiceObject>();
  readonly #slices = new Map<string, EndpointSliceObject>();
  readonly #sliceKeysByService = new Map<string, Set<string>>();
  readonly #slicesByService = new Map<string, readonly EndpointSliceObject[]>();
  readonly #pods = new Map<string, PodObject>();
  readonly #podKeysByNode = new Map<string, Set<string>>();
  readonly #nodes = new Set<string>();
  readonly #routes = new Map<string, RouteObject>();

  // Resolve.
  readonly #compiled = new Map<string, CompiledRoute>();
  readonly #parents = new Map<string, readonly ParentState[]>();
  /** Service key → routes whose compiled form read it (backendRefs, mirrors). */
  readonly #backendReaders = new Map<string, Set<string>>();
  /** Service key → routes that name it as a parent (bound or not). */
  readonly #parentReaders = new Map<string, Set<string>>();
  /** Service key → routes with a parentRef bound to it. */
  readonly #boundRoutes = new Map<string, Set<string>>();
  readonly #resolved = new Map<string, ServiceRoutes>();
  readonly #statuses = new Map<string, RouteStatus>();
  #sortedStatuses: readonly RouteStatus[] | undefined = [];

  // Compile.
  readonly #backends = new Map<string, BackendEntry>();
  readonly #parts = new Map<string, ServicePart>();
  #meshedKeys: readonly string[] = [];
  #baseServices: readonly Service[] = [];
  #baseBackendIds: readonly string[] = [];
  /** Base backend id → how many base parts refer to it. */
  readonly #baseIdCounts = new Map<string, number>();
  /** Service key → its ids among the base backend ids. */
  readonly #baseIdsByService = new Map<string, Set<string>>();
  #baseBackends: readonly Backend[] = [];
  /** Indexes into #meshedKeys of services with consumer route sets. */
  #consumerIndexes: readonly number[] = [];
  /** Bumped whenever a part with consumer route sets (or the position of one) changes. */
  #consumerEpoch = 0;
  /** A node's substitutions → their backend ids outside the base list (valid for that base id list). */
  readonly #extraIds = new WeakMap<Substitutions, { baseIds: readonly string[]; extra: readonly string[] }>();
  readonly #localPods = new Map<
    string,
    { readonly pod: PodObject; readonly captured: boolean; readonly local: LocalPod }
  >();
  readonly #nodeStates = new Map<string, NodeState>();
  #tables: ReadonlyMap<string, NodeTable> = new Map();

  constructor(options: CompileOptions = {}) {
    this.#settings = options.settings ?? DEFAULT_AGENT_SETTINGS;
    this.#version = options.version ?? UNVERSIONED;
  }

  /** Node tables (without versions), sorted by node name. A table object is replaced exactly when its content changes. */
  tables(): ReadonlyMap<string, NodeTable> {
    return this.#tables;
  }

  /** Every route's status, sorted by kind, namespace, name. A status object is replaced exactly when it changes. */
  statuses(): readonly RouteStatus[] {
    this.#sortedStatuses ??= [...this.#statuses.values()].sort(compareRouteStatuses);
    return this.#sortedStatuses;
  }

  /** Issues of every object held, sorted. */
  issues(): SnapshotIssue[] {
    const issues = [...this.#entries.values()].flatMap((e) => e.issues);
    return issues.sort((a, b) => compareStrings(a.object, b.object) || compareStrings(a.message, b.message));
  }

  /** Counts of the objects held, by kind. */
  counts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const e of this.#entries.values()) {
      const kind = e.identity?.kind ?? "";
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
    return counts;
  }

  /** The resolution as resolveRoutes would give it (built on demand: for tests and inspection). */
  resolution(): Resolution {
    const keys = [...this.#resolved.keys()].sort(compareStrings);
    const services = keys.map((k) => this.#resolved.get(k)!.service);
    const ids = new Set<string>();
    for (const s of services) for (const p of s.ports) ids.add(p.defaultBackendId);
    for (const c of this.#compiled.values()) for (const id of c.backendIds) ids.add(id);
    const backends = new Map<string, Backend>();
    for (const id of [...ids].sort(compareStrings)) {
      const b = this.#backend(id);
      if (b) backends.set(id, b);
    }
    return { services, backends, statuses: this.statuses() };
  }

  /** Applies a batch of changes, in order, and recomputes what they affect. */
  apply(changes: Iterable<ObjectChange>): RoutingUpdate {
    const dirty = {
      routes: new Set<string>(),
      services: new Set<string>(),
      sliceServices: new Set<string>(),
      nodes: new Set<string>(),
      namespaces: new Set<string>(),
      pods: new Set<string>(),
    };
    const issues: SnapshotIssue[] = [];
    for (const { object, deleted } of changes) {
      if (deleted) {
        const id = objectIdentity(object);
        const old = id && this.#entries.get(id.key);
        if (id && old) {
          this.#entries.delete(id.key);
          this.#forget(old, dirty);
        }
        continue;
      }
      const read = readObject(object, "object");
      issues.push(...read.issues);
      if (!read.identity) continue;
      const old = this.#entries.get(read.identity.key);
      if (old) this.#forget(old, dirty);
      this.#entries.set(read.identity.key, read);
      this.#remember(read, dirty);
    }

    for (const key of dirty.sliceServices) {
      const sliceKeys = [...(this.#sliceKeysByService.get(key) ?? [])].sort(compareStrings);
      if (sliceKeys.length === 0) this.#slicesByService.delete(key);
      else
        this.#slicesByService.set(
          key,
          sliceKeys.map((k) => this.#slices.get(k)!),
        );
    }

    const changedRoutes = this.#resolve(dirty.routes, dirty.services);
    const namespacesChanged = dirty.namespaces.size > 0;
    if (namespacesChanged) {
      const captured = capturedNamespaces(this.#namespaces.values());
      if (!sameItems(captured, this.#capturedNamespaces)) this.#capturedNamespaces = captured;
    }
    const partChanges = this.#updateParts(changedRoutes.services, namespacesChanged);
    const partsChanged = partChanges.length > 0;
    const backendServices = new Set([...dirty.services, ...dirty.sliceServices]);
    const baseChanged = this.#updateBase(partChanges, backendServices);
    const { changedNodes, removedNodes } = this.#updateNodes(
      dirty.nodes,
      namespacesChanged,
      baseChanged || partsChanged,
      backendServices,
    );
    for (const key of dirty.pods) if (!this.#pods.has(key)) this.#localPods.delete(key);
    // Backends of Services that are gone: nothing can refer to them any more.
    for (const key of dirty.services) {
      if (this.#services.has(key)) continue;
      for (const id of this.#backends.keys())
        if (parseBackendId(id).serviceKey === key) this.#backends.delete(id);
    }
    return { changedNodes, removedNodes, changedRoutes: changedRoutes.statuses, issues };
  }

  // --- inputs ---------------------------------------------------------------

  #remember(read: ReadObject, dirty: Dirty): void {
    const v = read.value;
    if (!v) return;
    switch (v.kind) {
      case "Namespace":
        this.#namespaces.set(v.object.name, v.object);
        dirty.namespaces.add(v.object.name);
        break;
      case "Service": {
        const key = objectKey(v.object.namespace, v.object.name);
        this.#services.set(key, v.object);
        dirty.services.add(key);
        break;
      }
      case "EndpointSlice": {
        const key = objectKey(v.object.namespace, v.object.name);
        this.#slices.set(key, v.object);
        if (v.object.serviceName !== "") {
          const service = objectKey(v.object.namespace, v.object.serviceName);
          addTo(this.#sliceKeysByService, service, key);
          dirty.sliceServices.add(service);
        }
        break;
      }
      case "Pod": {
        const key = objectKey(v.object.namespace, v.object.name);
        this.#pods.set(key, v.object);
        addTo(this.#podKeysByNode, v.object.nodeName, key);
        dirty.nodes.add(v.object.nodeName);
        break;
      }
      case "Node":
        this.#nodes.add(v.object.name);
        dirty.nodes.add(v.object.name);
        break;
      case "Route": {
        const key = routeKey(v.object);
        this.#routes.set(key, v.object);
        dirty.routes.add(key);
        break;
      }
      case "ReferenceGrant":
        // Read for issues only: grants do not change routing in the mesh (GEP-1294).
        break;
    }
  }

  #forget(read: ReadObject, dirty: Dirty): void {
    const v = read.value;
    if (!v) return;
    switch (v.kind) {
      case "Namespace":
        this.#namespaces.delete(v.object.name);
        dirty.namespaces.add(v.object.name);
        break;
      case "Service": {
        const key = objectKey(v.object.namespace, v.object.name);
        this.#services.delete(key);
        dirty.services.add(key);
        break;
      }
      case "EndpointSlice": {
        const key = objectKey(v.object.namespace, v.object.name);
        this.#slices.delete(key);
        if (v.object.serviceName !== "") {
          const service = objectKey(v.object.namespace, v.object.serviceName);
          removeFrom(this.#sliceKeysByService, service, key);
          dirty.sliceServices.add(service);
        }
        break;
      }
      case "Pod": {
        const key = objectKey(v.object.namespace, v.object.name);
        this.#pods.delete(key);
        dirty.pods.add(key);
        removeFrom(this.#podKeysByNode, v.object.nodeName, key);
        dirty.nodes.add(v.object.nodeName);
        break;
      }
      case "Node":
        this.#nodes.delete(v.object.name);
        dirty.nodes.add(v.object.name);
        break;
      case "Route": {
        const key = routeKey(v.object);
        this.#routes.delete(key);
        dirty.routes.add(key);
        break;
      }
      case "ReferenceGrant":
        break;
    }
  }

  // --- resolve --------------------------------------------------------------

  /** Recompiles, rebinds and re-resolves what the changed routes and Services affect. */
  #resolve(
    changedRoutes: ReadonlySet<string>,
    changedServices: ReadonlySet<string>,
  ): { services: Set<string>; statuses: string[] } {
    const toCompile = new Set(changedRoutes);
    const toBind = new Set(changedRoutes);
    for (const s of changedServices) {
      for (const r of this.#backendReaders.get(s) ?? []) toCompile.add(r);
      for (const r of this.#parentReaders.get(s) ?? []) toBind.add(r);
    }

    // Services to re-resolve: the changed ones, and every Service a touched
    // route was or is bound to.
    const toResolve = new Set(changedServices);
    const boundServices = (key: string) =>
      new Set(
        (this.#parents.get(key) ?? []).filter((p) => p.outcome.state === "bound").map((p) => p.serviceKey),
      );
    for (const key of new Set([...toCompile, ...toBind]))
      for (const s of boundServices(key)) toResolve.add(s);

    for (const key of toCompile) {
      const old = this.#compiled.get(key);
      if (old) for (const s of old.serviceDeps.keys()) removeFrom(this.#backendReaders, s, key);
      const route = this.#routes.get(key);
      if (!route) {
        this.#compiled.delete(key);
        continue;
      }
      const compiled = compileRoute(route, this.#services);
      this.#compiled.set(key, compiled);
      for (const s of compiled.serviceDeps.keys()) addTo(this.#backendReaders, s, key);
    }
    for (const key of toBind) {
      for (const p of this.#parents.get(key) ?? []) {
        removeFrom(this.#parentReaders, p.serviceKey, key);
        if (p.outcome.state === "bound") removeFrom(this.#boundRoutes, p.serviceKey, key);
      }
      const route = this.#routes.get(key);
      if (!route) {
        this.#parents.delete(key);
        continue;
      }
      const parents = bindRouteParents(route, this.#services);
      this.#parents.set(key, parents);
      for (const p of parents) {
        addTo(this.#parentReaders, p.serviceKey, key);
        if (p.outcome.state === "bound") {
          addTo(this.#boundRoutes, p.serviceKey, key);
          toResolve.add(p.serviceKey);
        }
      }
    }

    // Routes whose status may change: the touched ones, and every route bound
    // to a re-resolved Service (conflicts are settled per Service).
    const toStatus = new Set([...toCompile, ...toBind]);
    for (const s of toResolve) {
      const service = this.#services.get(s);
      if (!service || !hasClusterIP(service)) {
        this.#resolved.delete(s);
        continue;
      }
      const routes = [...(this.#boundRoutes.get(s) ?? [])].sort(compareStrings);
      const attachments: ServiceAttachment[] = [];
      for (const r of routes) {
        toStatus.add(r);
        const att = attachmentFor(this.#compiled.get(r)!, this.#parents.get(r)!, s);
        if (att) attachments.push(att);
      }
      this.#resolved.set(s, resolveServiceRoutes(service, attachments));
    }

    const changedStatuses: string[] = [];
    for (const key of toStatus) {
      const compiled = this.#compiled.get(key);
      const parents = this.#parents.get(key);
      const old = this.#statuses.get(key);
      if (!compiled || !parents) {
        if (old) {
          this.#statuses.delete(key);
          changedStatuses.push(key);
        }
        continue;
      }
      const conflicts = new Map<number, ConflictOutcome>();
      for (const s of new Set(parents.map((p) => p.serviceKey))) {
        for (const [i, c] of this.#resolved.get(s)?.conflicts.get(key) ?? []) conflicts.set(i, c);
      }
      const status = routeStatus(compiled, parents, conflicts);
      if (old && sameStatus(old, status)) continue;
      this.#statuses.set(key, status);
      changedStatuses.push(key);
    }
    if (changedStatuses.length > 0) this.#sortedStatuses = undefined;
    return { services: toResolve, statuses: changedStatuses.sort(compareStrings) };
  }

  // --- compile --------------------------------------------------------------

  /**
   * Rebuilds the parts of re-resolved Services (all of them when capture
   * labels changed). Returns the parts replaced, added or removed.
   */
  #updateParts(resolvedServices: ReadonlySet<string>, namespacesChanged: boolean): PartChange[] {
    const keys = namespacesChanged
      ? new Set([...this.#parts.keys(), ...this.#resolved.keys()])
      : resolvedServices;
    const changes: PartChange[] = [];
    for (const key of keys) {
      const old = this.#parts.get(key);
      const resolved = this.#resolved.get(key);
      const meshed =
        resolved &&
        meshedService(resolved.service, namespaceCaptured(this.#namespaces.get(resolved.service.namespace)));
      if (!meshed) {
        if (old) {
          this.#parts.delete(key);
          changes.push({ key, old, part: undefined });
        }
        continue;
      }
      if (old && sameBytes(serviceBytes(old.meshed), serviceBytes(meshed))) continue;
      const consumers = consumerNamespaces(meshed);
      let producerOnly = consumers.length === 0 ? meshed : serviceForClients(meshed, new Set());
      // The producer routes may be unchanged when only consumer routes changed.
      if (old && sameBytes(serviceBytes(old.producerOnly), serviceBytes(producerOnly)))
        producerOnly = old.producerOnly;
      const part: ServicePart = {
        meshed,
        consumers,
        producerOnly,
        producerOnlyBackendIds:
          producerOnly === old?.producerOnly ? old.producerOnlyBackendIds : serviceBackendIds(producerOnly),
        variants: new Map(),
        previousVariants: old?.variants,
      };
      this.#parts.set(key, part);
      changes.push({ key, old, part });
    }
    return changes;
  }

  /**
   * Updates what every node without consumer clients shares: the list of
   * meshed services and the list of backends they refer to. Both change in
   * place of the changed parts only (sorted keys and reference-counted
   * backend ids are kept up to date), so a change costs a copy of the lists,
   * not a rebuild. Returns whether either list changed.
   */
  #updateBase(changes: readonly PartChange[], backendServices: ReadonlySet<string>): boolean {
    let changed = false;
    let idsChanged = false;
    if (changes.length > 0) {
      let keysChanged = false;
      let consumersChanged = false;
      for (const { key, old, part } of changes) {
        if (!old || !part) {
          keysChanged = true;
          const keys = [...this.#meshedKeys];
          const at = sortedIndex(keys, key);
          if (part && keys[at] !== key) keys.splice(at, 0, key);
          if (!part && keys[at] === key) keys.splice(at, 1);
          this.#meshedKeys = keys;
        }
        if ((old?.consumers.length ?? 0) > 0 || (part?.consumers.length ?? 0) > 0) consumersChanged = true;
        if (old?.producerOnly === part?.producerOnly) continue;
        // Up before down, so an id both parts refer to never drops out on the way.
        for (const id of part?.producerOnlyBackendIds ?? [])
          idsChanged = this.#countBaseId(id, +1) || idsChanged;
        for (const id of old?.producerOnlyBackendIds ?? [])
          idsChanged = this.#countBaseId(id, -1) || idsChanged;
      }
      const services = keysChanged
        ? this.#meshedKeys.map((k) => this.#parts.get(k)!.producerOnly)
        : [...this.#baseServices];
      if (!keysChanged) {
        for (const { key, part } of changes)
          services[sortedIndex(this.#meshedKeys, key)] = part!.producerOnly;
      }
      if (!sameItems(services, this.#baseServices)) {
        this.#baseServices = services;
        changed = true;
      }
      if (keysChanged || consumersChanged) {
        const consumerIndexes: number[] = [];
        this.#meshedKeys.forEach((k, i) => {
          if (this.#parts.get(k)!.consumers.length > 0) consumerIndexes.push(i);
        });
        this.#consumerIndexes = consumerIndexes;
        this.#consumerEpoch++;
      }
    }
    if (idsChanged) {
      this.#baseBackendIds = [...this.#baseIdCounts.keys()].sort(compareStrings);
    }
    const touched = [...backendServices].flatMap((s) => [...(this.#baseIdsByService.get(s) ?? [])]);
    // The list lines up with the ids unless some id had no backend.
    const aligned = this.#baseBackends.length === this.#baseBackendIds.length;
    if (!idsChanged && aligned && touched.length > 0) {
      // Endpoints changed: replace just those backends.
      let next: Backend[] | undefined;
      for (const id of touched) {
        const backend = this.#backend(id);
        if (!backend) {
          idsChanged = true; // cannot line up any more: rebuild below
          break;
        }
        const at = sortedIndex(this.#baseBackendIds, id);
        if (this.#baseBackends[at] === backend) continue;
        next ??= [...this.#baseBackends];
        next[at] = backend;
      }
      if (next && !idsChanged) {
        this.#baseBackends = next;
        changed = true;
      }
    }
    if (idsChanged || (!aligned && touched.length > 0)) {
      const backends = this.#backendList(this.#baseBackendIds);
      if (!sameItems(backends, this.#baseBackends)) {
        this.#baseBackends = backends;
        changed = true;
      }
    }
    return changed;
  }

  /** Counts a base backend id up or down; returns whether the set of ids changed. */
  #countBaseId(id: string, delta: 1 | -1): boolean {
    const count = (this.#baseIdCounts.get(id) ?? 0) + delta;
    const { serviceKey } = parseBackendId(id);
    if (count > 0) {
      this.#baseIdCounts.set(id, count);
      const added = delta > 0 && count === 1;
      if (added) addTo(this.#baseIdsByService, serviceKey, id);
      return added;
    }
    this.#baseIdCounts.delete(id);
    removeFrom(this.#baseIdsByService, serviceKey, id);
    return true;
  }

  #updateNodes(
    dirtyNodes: ReadonlySet<string>,
    everyNode: boolean,
    baseChanged: boolean,
    backendServices: ReadonlySet<string>,
  ): { changedNodes: string[]; removedNodes: string[] } {
    const changedNodes: string[] = [];
    const removedNodes: string[] = [];
    for (const node of [...this.#nodeStates.keys()]) {
      if (!this.#nodes.has(node)) {
        this.#nodeStates.delete(node);
        removedNodes.push(node);
      }
    }
    const hasConsumers = this.#consumerIndexes.length > 0;
    for (const node of this.#nodes) {
      const old = this.#nodeStates.get(node);
      const podsDirty = !old || everyNode || dirtyNodes.has(node);
      // Nodes holding consumer variants depend on those variants' backends too.
      if (!podsDirty && !baseChanged && !(hasConsumers && (backendServices.size > 0 || everyNode))) continue;
      let localPods = old?.localPods ?? [];
      let clients = old?.clients ?? new Set<string>();
      if (podsDirty) {
        const fresh = this.#localPodsOf(node);
        if (!sameItems(fresh, localPods)) {
          localPods = fresh;
          clients = clientNamespaces(fresh);
        }
      }
      const substitutions =
        old && old.clients === clients && old.consumerEpoch === this.#consumerEpoch
          ? old.substitutions
          : this.#substitutionsFor(clients);
      const services = this.#servicesWith(substitutions, old);
      const backends = this.#backendsWith(substitutions, old, backendServices.size > 0);
      const state: NodeState = {
        localPods,
        clients,
        consumerEpoch: this.#consumerEpoch,
        substitutions,
        baseServices: this.#baseServices,
        baseBackends: this.#baseBackends,
        table: old?.table as NodeTable,
      };
      if (
        old &&
        old.table.localPods === localPods &&
        old.table.services === services &&
        old.table.backends === backends &&
        old.table.capturedNamespaces === this.#capturedNamespaces
      ) {
        this.#nodeStates.set(node, state);
        continue;
      }
      // The generated message type has mutable arrays; these lists are shared
      // between tables and must stay as they are.
      const table: NodeTable = {
        version: this.#version,
        node,
        settings: this.#settings,
        services: services as Service[],
        backends: backends as Backend[],
        localPods: localPods as LocalPod[],
        capturedNamespaces: this.#capturedNamespaces as string[],
      };
      this.#nodeStates.set(node, { ...state, table });
      changedNodes.push(node);
    }
    if (changedNodes.length > 0 || removedNodes.length > 0) {
      const names = [...this.#nodeStates.keys()].sort(compareStrings);
      this.#tables = new Map(names.map((n) => [n, this.#nodeStates.get(n)!.table]));
    }
    return {
      changedNodes: changedNodes.sort(compareStrings),
      removedNodes: removedNodes.sort(compareStrings),
    };
  }

  /** Which meshed services a node with these client namespaces holds as a consumer variant instead of the base part. */
  #substitutionsFor(clients: ReadonlySet<string>): Substitutions {
    const list: { index: number; service: Service }[] = [];
    const extraIds = new Set<string>();
    for (const index of this.#consumerIndexes) {
      const part = this.#parts.get(this.#meshedKeys[index]!)!;
      const relevant = part.consumers.filter((ns) => clients.has(ns));
      if (relevant.length === 0) continue;
      const variantKey = relevant.join(",");
      let variant = part.variants.get(variantKey);
      if (!variant) {
        const service = serviceForClients(part.meshed, new Set(relevant));
        const previous = part.previousVariants?.get(variantKey);
        variant =
          previous && sameBytes(serviceBytes(previous.service), serviceBytes(service))
            ? previous
            : { service, backendIds: serviceBackendIds(service) };
        part.variants.set(variantKey, variant);
      }
      list.push({ index, service: variant.service });
      for (const id of variant.backendIds) extraIds.add(id);
    }
    return { list, extraIds: [...extraIds].sort(compareStrings) };
  }

  /** The node's services list: the shared base list, or a copy with the node's consumer variants in place. */
  #servicesWith(substitutions: Substitutions, old: NodeState | undefined): readonly Service[] {
    if (substitutions.list.length === 0) return this.#baseServices;
    if (old && old.substitutions === substitutions && old.baseServices === this.#baseServices)
      return old.table.services;
    const services = this.#baseServices.slice();
    for (const { index, service } of substitutions.list) services[index] = service;
    return old && sameItems(services, old.table.services) ? old.table.services : services;
  }

  /** The node's backends list: the shared base list, or the base plus the backends only its consumer variants use. */
  #backendsWith(
    substitutions: Substitutions,
    old: NodeState | undefined,
    backendsChanged: boolean,
  ): readonly Backend[] {
    let cached = this.#extraIds.get(substitutions);
    if (cached?.baseIds !== this.#baseBackendIds) {
      cached = {
        baseIds: this.#baseBackendIds,
        extra: substitutions.extraIds.filter((id) => !this.#baseIdCounts.has(id)),
      };
      this.#extraIds.set(substitutions, cached);
    }
    const extra = cached.extra;
    if (extra.length === 0) return this.#baseBackends;
    if (
      !backendsChanged &&
      old &&
      old.substitutions === substitutions &&
      old.baseBackends === this.#baseBackends
    )
      return old.table.backends;
    const backends = this.#backendList([...this.#baseBackendIds, ...extra].sort(compareStrings));
    return old && sameItems(backends, old.table.backends) ? old.table.backends : backends;
  }

  #backendList(ids: readonly string[]): Backend[] {
    const list: Backend[] = [];
    for (const id of ids) {
      const b = this.#backend(id);
      if (b) list.push(b);
    }
    return list;
  }

  /** The Backend of a service port, rebuilt when its Service or EndpointSlices changed, kept as the same object when equal. */
  #backend(id: string): Backend | undefined {
    const { serviceKey, port } = parseBackendId(id);
    const service = this.#services.get(serviceKey);
    const slices = this.#slicesByService.get(serviceKey);
    const old = this.#backends.get(id);
    if (old && old.service === service && old.slices === slices) return old.backend;
    const servicePort = service?.ports.find((p) => p.port === port && p.protocol === "TCP");
    if (!service || !servicePort) {
      this.#backends.delete(id);
      return undefined;
    }
    let backend = buildBackend(service, servicePort, slices ?? NO_SLICES);
    if (old && sameBytes(backendBytes(old.backend), backendBytes(backend))) backend = old.backend;
    this.#backends.set(id, { service, slices, backend });
    return backend;
  }

  #localPodsOf(node: string): LocalPod[] {
    const keys = [...(this.#podKeysByNode.get(node) ?? [])].sort(compareStrings);
    const pods: LocalPod[] = [];
    for (const key of keys) {
      const pod = this.#pods.get(key)!;
      if (!isLocalPod(pod)) {
        this.#localPods.delete(key);
        continue;
      }
      const local = localPod(pod, this.#namespaces);
      const old = this.#localPods.get(key);
      if (old && old.pod === pod && old.captured === local.captured) {
        pods.push(old.local);
        continue;
      }
      const kept = old && sameLocalPod(old.local, local) ? old.local : local;
      this.#localPods.set(key, { pod, captured: local.captured, local: kept });
      pods.push(kept);
    }
    return pods;
  }
}

type Dirty = {
  routes: Set<string>;
  services: Set<string>;
  sliceServices: Set<string>;
  nodes: Set<string>;
  namespaces: Set<string>;
  /** Pods forgotten (deleted or replaced). */
  pods: Set<string>;
};

function addTo(index: Map<string, Set<string>>, key: string, value: string): void {
  let set = index.get(key);
  if (!set) {
    set = new Set();
    index.set(key, set);
  }
  set.add(value);
}

function removeFrom(index: Map<string, Set<string>>, key: string, value: string): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}

/** Where `key` is or would go in a sorted list. */
function sortedIndex(list: readonly string[], key: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareStrings(list[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

function sameLocalPod(a: LocalPod, b: LocalPod): boolean {
  return (
    a.namespace === b.namespace && a.name === b.name && a.captured === b.captured && sameItems(a.ips, b.ips)
  );
}

function sameStatus(a: RouteStatus, b: RouteStatus): boolean {
  return a.generation === b.generation && JSON.stringify(a.parents) === JSON.stringify(b.parents);
}
