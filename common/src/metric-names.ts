/** Metric names of the balancer, on its admin listener's /metrics. */
export const BALANCER_METRIC = {
  requests: 'lb_requests_total',
  requestDuration: 'lb_request_duration_seconds',
  backendUp: 'lb_backend_up',
  activeRequests: 'lb_backend_active_requests',
  retries: 'lb_retries_total',
  healthChecks: 'lb_health_checks_total',
  stateChanges: 'lb_backend_state_changes_total',
  configReloads: 'lb_config_reloads_total',
  ejections: 'lb_ejections_total',
  info: 'lb_info',
  workers: 'lb_workers',
  workerRestarts: 'lb_worker_restarts_total',
  tcpConnections: 'lb_tcp_connections_total',
  clientErrors: 'lb_client_errors_total',
  tcpActiveConnections: 'lb_tcp_active_connections',
  tcpBytes: 'lb_tcp_bytes_total',
  tcpConnectionDuration: 'lb_tcp_connection_duration_seconds',
} as const;

/** Metric names of the backend, on its control port's /metrics; every series also carries `backend="<BACKEND_ID>"`. */
export const BACKEND_METRIC = {
  requests: 'backend_requests_total',
  duration: 'backend_request_duration_seconds',
  inFlight: 'backend_in_flight_requests',
  held: 'backend_held_requests',
  chaosLatency: 'backend_chaos_latency_seconds',
  chaosJitter: 'backend_chaos_latency_jitter_seconds',
  chaosErrorRate: 'backend_chaos_error_rate',
  chaosErrorStatus: 'backend_chaos_error_status',
  chaosHealthFailing: 'backend_chaos_health_failing',
  chaosHang: 'backend_chaos_hang',
  tcpConnections: 'backend_tcp_connections_total',
  tcpActiveConnections: 'backend_tcp_active_connections',
} as const;

/** Metric names of the loadgen's continuous mode: what the clients saw. */
export const LOADGEN_METRIC = {
  requests: 'loadgen_requests_total',
  errors: 'loadgen_errors_total',
  duration: 'loadgen_request_duration_seconds',
  backendResponses: 'loadgen_backend_responses_total',
  targetRate: 'loadgen_target_rate',
  inFlight: 'loadgen_in_flight_requests',
  tcpConnections: 'loadgen_tcp_connections_total',
  tcpDuration: 'loadgen_tcp_connection_duration_seconds',
} as const;
