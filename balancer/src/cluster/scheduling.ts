/**
 * How new connections reach the workers (environment variable LB_SCHEDULING):
 * - rr (default): the primary holds the one listening socket, accepts and hands connections to the
 *   workers in turn (node:cluster's SCHED_RR). The socket outlives every worker, so an upgrade or
 *   a crash never refuses a connection; the primary is in the accept path, once per connection.
 * - reuseport: each worker listens on its own socket (SO_REUSEPORT) and the kernel spreads
 *   connections by hash. A socket closed with connections still in its accept queue resets them,
 *   unless net.ipv4.tcp_migrate_req is 1; kept for the benchmark's comparison.
 */
export type Scheduling = 'rr' | 'reuseport';

export const schedulings: readonly Scheduling[] = ['rr', 'reuseport'];

export function schedulingFromEnv(env: NodeJS.ProcessEnv = process.env): Scheduling {
  const value = env.LB_SCHEDULING?.trim() || 'rr';
  if (!(schedulings as readonly string[]).includes(value)) throw new Error(`LB_SCHEDULING=${JSON.stringify(value)}: expected one of ${schedulings.join(', ')}`);
  return value as Scheduling;
}
