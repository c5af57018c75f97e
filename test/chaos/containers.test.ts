/**
 * The chaos scenarios in containers: the project's images on one user-defined network, faults through the
 * Docker API. Skipped with the reason where no Docker engine answers; with CI=true that is a failure.
 */
import { after, before, describe } from 'node:test';
import { containerSuiteSkip, dockerUnavailableReason } from '../helpers/docker.js';
import { ContainerDriver } from './container-lab.js';
import { defineChaosScenarios } from './scenarios.js';

const skip = containerSuiteSkip(await dockerUnavailableReason(), 'container chaos suite');

describe('chaos scenarios in containers', { skip, timeout: 600_000 }, () => {
  const driver = new ContainerDriver();
  before(() => driver.setup(), { timeout: 480_000 });
  after(() => driver.teardown());
  defineChaosScenarios(driver);
});
