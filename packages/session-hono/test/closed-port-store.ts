import type { AddressInfo } from "node:net";
import { connect, createServer } from "node:net";
import { createMemoryStore, KvConnectionError, type KvStore } from "@kvsession/kv";
import { createStore, delegateDriver, type KvDriver } from "@kvsession/kv/driver";

/** A loopback port that was free a moment ago and that nothing listens on now. */
export async function closedPort(): Promise<number> {
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
 */
export function closedPortStore(port: number): KvStore {
  const driver: Record<string, unknown> = { ...delegateDriver(createMemoryStore(), "closed-port") };
  for (const [name, value] of Object.entries(driver))
    if (typeof value === "function" && name !== "close") driver[name] = () => reach(port);
  return createStore(driver as unknown as KvDriver);
}
