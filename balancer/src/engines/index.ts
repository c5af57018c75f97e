import type { Engine, EngineName, EngineSettings } from './engine.js';

/** Each engine is loaded only when chosen: undici alone adds about 200 ms to every start. */
const factories = {
  'http-proxy': async (settings) => new (await import('./http-proxy.js')).HttpProxyEngine(settings),
  undici: async (settings) => new (await import('./undici.js')).UndiciEngine(settings),
} satisfies Record<EngineName, (settings: EngineSettings) => Promise<Engine>>;

export function createEngine(name: EngineName, settings: EngineSettings): Promise<Engine> {
  return factories[name](settings);
}
