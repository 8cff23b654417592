/**
 * The pg half of the leak check in test/leak-environment.js. Every test file loads its own copy of pg,
 * so its pools and clients are tracked from inside the file's registry (a setup file runs there): a
 * pool or client counts from its first connect and stays open until end() is called. A pool's own
 * clients are the pool's business: only the pool is reported.
 */
import pg from 'pg';

interface Tracked {
  kind: string;
  isOpen: () => boolean;
  close: () => Promise<void> | void;
}

type Track = (handle: object, what: Tracked) => void;

/** The pg-pool and pg.Client fields that say end() was called (neither has a public flag). */
type PoolState = pg.Pool & { ending: boolean; _clients: pg.Client[] };
type ClientState = pg.Client & { _ending: boolean; _ended: boolean; _connected: boolean };

const track = (globalThis as { __postboxTrackHandle?: Track }).__postboxTrackHandle;

if (track) {
  const pools: PoolState[] = [];
  const poolConnect = pg.Pool.prototype.connect;
  pg.Pool.prototype.connect = function (this: PoolState, ...args: unknown[]) {
    if (!pools.includes(this)) pools.push(this);
    track(this, {
      kind: 'pg.Pool',
      isOpen: () => !this.ending,
      close: () => this.end(),
    });
    return (poolConnect as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof poolConnect;

  const clientConnect = pg.Client.prototype.connect;
  pg.Client.prototype.connect = function (this: ClientState, ...args: unknown[]) {
    const pooled = () => pools.some((p) => p._clients.includes(this));
    track(this, {
      kind: 'pg.Client',
      isOpen: () => this._connected && !this._ending && !this._ended && !pooled(),
      close: () => this.end(),
    });
    return (clientConnect as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof clientConnect;
}
