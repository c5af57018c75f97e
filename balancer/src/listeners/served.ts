import type { Server, Socket } from 'node:net';
import type { Registry } from 'prom-client';
import type { LoadView } from '../backends/view.js';
import type { Snapshot } from '../snapshot.js';
import type { ReportBatcher } from '../cluster/report.js';

/** One listener as a worker serves it: its listening server, its data plane, what it reports and counts. */
export interface ServedListener {
  readonly name: string;
  readonly server: Server;
  /** labelled with the listener */
  readonly registry: Registry;
  readonly reports: ReportBatcher;
  apply(snapshot: Snapshot): void;
  /** startDraining: from now on, answers close their connection (http) */
  startDraining(): void;
  /** client connections open now */
  openConnections(): number;
  /** requests (tcp: connections) in flight to backends */
  inFlight(): number;
  loads(): Iterable<readonly [string, LoadView]>;
  /** closeIdle closes connections that carry nothing now (idle keep-alive ones; a tcp connection is never idle in this sense) */
  closeIdle(): void;
  closeAll(): void;
  /** close ends the data plane: the connections to the backends */
  close(): void;
}

/** ConnectionCount: a listener's client connections, open now and accepted in all, for its reports. */
export class ConnectionCount {
  open = 0;
  accepted = 0;

  track(socket: Socket): void {
    this.open++;
    this.accepted++;
    socket.once('close', () => this.open--);
  }
}
