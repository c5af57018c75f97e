/**
 * Idle keep-alive connections to a backend are closed after this, below the default
 * keepAliveTimeout of Node's HTTP server (5 s): the balancer closes first, so it never sends a
 * request on a connection the backend is closing at the same moment.
 */
export const IDLE_SOCKET_TIMEOUT_MS = 4_000;

/**
 * An idle client connection is closed after this (the traffic server's keepAliveTimeout), and
 * every keep-alive response says so (`Keep-Alive: timeout=5`): clients that honour the hint, as
 * Node's http.Agent (≥ 24.7) and undici do, close first and never send on a connection the
 * balancer is closing; that matters most while old workers drain during an upgrade.
 */
export const CLIENT_IDLE_TIMEOUT_MS = 5_000;
