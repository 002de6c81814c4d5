// What face answers for one cell (GET /center/… or /edge/…), and the mesh's
// debug headers it passes through so the GUI can say who served the cell.

/** Response headers (and gRPC response metadata) a mesh may add: the route and backend that served a call. */
export const DEBUG_ROUTE_HEADER = "x-trellis-route";
export const DEBUG_BACKEND_HEADER = "x-trellis-backend";

/** How one upstream call went, from face's side. */
export type Served = {
  /** HTTP status ("200", "504") or gRPC status name ("OK", "INTERNAL"); "error" when no answer came. */
  status: string;
  /** X-Faces-Pod of the answer, when there was one. */
  pod?: string;
  /** The mesh's route/backend headers, when present. */
  route?: string;
  backend?: string;
  /** Milliseconds face waited for the answer. */
  ms: number;
};

export type FaceCell = {
  /** HTML entity, e.g. "&#x1F603;". */
  smiley: string;
  /** Catalog name of the smiley ("Grinning", …; "Sleeping"/"Cursing" when degraded; "Unknown" if not in the catalog). */
  smileyName: string;
  /** Hex colour, e.g. "#66CCEE". */
  color: string;
  colorName: string;
  /** Present only when something went wrong upstream. */
  errors?: string[];
  /** The face pod that composed the cell. */
  pod: string;
  served: { smiley: Served; color: Served };
};
