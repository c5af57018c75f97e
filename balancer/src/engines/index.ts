import type { Engine, EngineName, EngineSettings } from './engine.js';
import { HttpProxyEngine } from './http-proxy.js';
import { UndiciEngine } from './undici.js';

const factories = {
  'http-proxy': (settings) => new HttpProxyEngine(settings),
  undici: (settings) => new UndiciEngine(settings),
} satisfies Record<EngineName, (settings: EngineSettings) => Engine>;

export function createEngine(name: EngineName, settings: EngineSettings): Engine {
  return factories[name](settings);
}
