import type { Readable } from 'node:stream';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { FailureKind } from '../pipeline/error-mapping.js';

export const engineNames = ['http-proxy', 'undici'] as const;
export type EngineName = (typeof engineNames)[number];

/** A failed try, classified, with what caused it. */
export interface TryFailure {
  kind: FailureKind;
  cause: Error;
}

/**
 * What an engine tells the pipeline about one try. onHead, then the engine streams the body to
 * the client; or onFailure before any response byte; or onBodyError once the body has started
 * (the engine has then closed the client connection). Exactly one of onFailure and onHead is called.
 */
export interface TryObserver {
  /** onHead: the response head arrived; headers may be edited before they are sent to the client */
  onHead(status: number, headers: IncomingHttpHeaders): void;
  onFailure(failure: TryFailure): void;
  onBodyError(cause: Error): void;
}

/** One try in progress. */
export interface EngineTry {
  /** abort ends the try; before the response head, the observer gets onFailure with this kind */
  abort(kind: FailureKind, cause: Error): void;
}

/** The engine's connections to one backend (an http.Agent, an undici Pool). */
export interface Upstream {
  close(): void;
}

/**
 * How an engine reaches an https:// backend; ignored for http:// ones. Without it, the backend's
 * certificate is verified against Node's default CA store for the URL's host.
 */
export interface UpstreamTls {
  /** the CA certificates (PEM) the backend's certificate must chain to, instead of Node's default store (upstreamTls.ca) */
  ca?: string | Buffer;
  /** the name the backend's certificate must carry, sent as SNI; default the URL's host (an IP address: checked, not sent) */
  servername?: string;
  /** false accepts any certificate: for a lab only */
  rejectUnauthorized: boolean;
}

export interface EngineSettings {
  /** the TCP connect to a backend, and the TLS handshake with an https:// one, in ms */
  connectTimeout: number;
}

/**
 * An Engine does one try to one backend: it sends the request as the pipeline prepared it
 * (headers already rewritten; the body streamed from the client unless bodiless) and reports
 * the response head or a classified failure. Retries, timeouts other than connect, passive
 * health and accounting are the pipeline's, written once above every engine.
 */
export interface Engine {
  readonly name: EngineName;
  /** upstream: the connections to one backend; tls applies to an https:// url */
  upstream(url: string, tls?: UpstreamTls): Upstream;
  /** body: where the request body comes from when not straight from req (limits.maxBodyBytes counts it on its way) */
  forward(req: IncomingMessage, res: ServerResponse, upstream: Upstream, bodiless: boolean, observer: TryObserver, body?: Readable): EngineTry;
  close(): void;
}
