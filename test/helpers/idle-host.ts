// A service host for API tests that never serves: start and stop answer at once, nothing
// runs. Tests about the store and the library behind HostApi need no real services.
import { EventBus } from '../../main/core/events.js';
import type { ApiServiceHost } from '../../main/api/api.js';

export function idleServiceHost(bus: ApiServiceHost['bus'] = new EventBus()): ApiServiceHost {
  return {
    bus,
    start: async () => ({ running: true, mode: 'proxy', services: [], problems: [] }),
    stop: async () => ({ running: false, mode: 'proxy', services: [], problems: [] }),
    status: () => ({ running: false, mode: 'proxy', services: [], problems: [] }),
    config: () => ({ mode: 'proxy', root: '/srv', httpPort: 8080, boot: {}, dataDir: '/srv/bootbench' }),
    activeTransfers: () => [],
  };
}
