import type { AddressInfo } from "node:net";
import { connect, createServer } from "node:net";
import { createMemoryStore, KvConnectionError, type KvStore } from "@kvsession/kv";
import { wrapStore } from "./wrap-store.js";

/**
 * A loopback port that was free a moment ago: nothing listens on it now, so a server can take it, or a client finds it closed.
 *
 * @example
 * const store = createRedisStore({ url: `redis://127.0.0.1:${await freePort()}` }); // an outage
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Opens a TCP connection to the port, as a network driver does, and fails the way one reports it. */
function reach(port: number): Promise<never> {
  return new Promise((_, reject) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      reject(new Error(`something listens on 127.0.0.1:${port}; this store expects nothing there`));
    });
    socket.once("error", (err) =>
      reject(
        new KvConnectionError(`store at 127.0.0.1:${port} is unreachable (${err.message})`, { cause: err }),
      ),
    );
  });
}

/**
 * A store whose every operation really tries a port nothing listens on: the outage of a network
 * store, with the refused connection's own error (which names the address) as its cause.
 *
 * @example
 * const store = closedPortStore(await freePort());
 * await store.get("k"); // rejects with KvConnectionError
 */
export function closedPortStore(port: number): KvStore {
  return wrapStore(createMemoryStore(), () => reach(port));
}
