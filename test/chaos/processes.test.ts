/**
 * The chaos scenarios against local processes (no Docker needed): real backend and balancer processes on
 * 127.0.0.1, faults by real signals. The partition scenario runs only in the container suite (containers.test.ts).
 */
import { describe } from 'node:test';
import { processDriver } from './process-lab.js';
import { defineChaosScenarios } from './scenarios.js';

describe('chaos scenarios with local processes', { timeout: 480_000 }, () => {
  defineChaosScenarios(processDriver);
});
