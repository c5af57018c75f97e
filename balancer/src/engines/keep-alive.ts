/**
 * Idle keep-alive connections to a backend are closed after this, below the default
 * keepAliveTimeout of Node's HTTP server (5 s): the balancer closes first, so it never sends a
 * request on a connection the backend is closing at the same moment.
 */
export const IDLE_SOCKET_TIMEOUT_MS = 4_000;
