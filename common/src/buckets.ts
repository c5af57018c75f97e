/**
 * Upper bounds of every latency histogram of the lab, in seconds: from half a millisecond (an unloaded
 * backend) to 30 s (the balancer's default request timeout), the same for all so that quantiles compare.
 */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
