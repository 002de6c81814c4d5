// What starting a workload returns: where it listens and how to stop it.
export type RunningWorkload = {
  port: number;
  metricsPort: number;
  close(): Promise<void>;
};
