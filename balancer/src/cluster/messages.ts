import type { Registry } from 'prom-client';
import type { ListenerConfig } from '../config.js';
import type { FailureKind } from '../pipeline/error-mapping.js';
import type { Snapshot } from '../snapshot.js';

/**
 * The IPC protocol between the primary and its traffic workers (node:cluster's channel, JSON).
 * The primary sends the configuration and every snapshot; a worker sends what its requests did,
 * in batches (WorkerReport), and its metrics when asked.
 */

export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** What a worker needs to serve one listener: its configuration, the port to listen on (port 0 resolved) and its snapshot now. */
export interface ListenerStart {
  config: ListenerConfig;
  /** its metrics carry the listener label (the file has `listeners:`) */
  labelled: boolean;
  port: number;
  snapshot: Snapshot;
}

export type ToWorker =
  | { type: 'start'; listeners: ListenerStart[]; graceMs: number }
  | { type: 'snapshot'; listener: string; snapshot: Snapshot }
  /** listen: serve one more listener (added by a reload); unlisten: stop accepting on one, drain it for at most graceMs, close it */
  | { type: 'listen'; listener: ListenerStart }
  | { type: 'unlisten'; listener: string; graceMs: number }
  /** upgrade: idle connections stay open until their next request, answered with `Connection: close`; stop: idle ones close at once */
  | { type: 'drain'; mode: DrainMode; graceMs: number }
  | { type: 'metrics'; id: number }
  /** the answer to 'closing': every connection handed to this worker was sent before this message */
  | { type: 'closed' };

export type DrainMode = 'upgrade' | 'stop';

export type FromWorker =
  /** it is ready for its start message */
  | { type: 'waiting' }
  | { type: 'ready' }
  /** the answers to listen and unlisten */
  | { type: 'listening'; listener: string; error?: string }
  | { type: 'unlistened'; listener: string }
  /**
   * it has stopped accepting. node:cluster's own message that takes it out of the round-robin went
   * before this one on the same channel, so when the primary reads this, no further connection
   * will be handed to it; the worker waits for the answer before it exits, so that no connection
   * handed to it is left in the pipe of a process that is gone.
   */
  | { type: 'closing' }
  | (WorkerReport & { listener: string })
  /** an answer to the primary's request of that id, or id 0: sent unasked */
  | { type: 'metrics'; id: number; metrics: MetricsJson }
  /** the last message of a worker that drained: its final counters, and requests cut off at the grace limit */
  | { type: 'final'; metrics: MetricsJson; abandoned: number };

/**
 * One try's outcome, in the order the worker saw them: a negative number n stands for -n tries
 * answered below 500; a number of 500 or more, a try answered with that status; a pair, a try
 * that failed (failure kind, detail).
 */
export type TryOutcome = number | [FailureKind, string];

export interface BackendReport {
  /** the worker's load on the backend now: [in flight, started, peak-EWMA score in ms] */
  load?: [active: number, total: number, latencyMs: number];
  tries?: TryOutcome[];
  /** answered requests: status, milliseconds, status, milliseconds, ... */
  requests?: number[];
  /** the backend is being removed and this worker has nothing in flight to it any more */
  drained?: true;
}

export interface WorkerReport {
  type: 'report';
  /** by backend id (and "none" for refused requests, which only have requests) */
  backends: Record<string, BackendReport>;
  /** backends this worker no longer routes to */
  gone?: string[];
  /** the worker's listener: requests (tcp: connections) in flight and served, connections open and accepted */
  worker: { active: number; total: number; connections: number; accepted: number };
}
