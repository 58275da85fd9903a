// A TCP proxy a test can cut, drop, pause and restore, standing between the server and
// PostgreSQL or Redis: an outage without touching the shared services.
import net from "node:net";

/**
 * `tap`: sees every chunk a client sends upstream, per connection (a test reading the
 * protocol, e.g. counting PostgreSQL statements; see pgTap.ts).
 */
export async function startProxy(
  target: { host: string; port: number },
  options: { tap?: (connection: number, chunk: Buffer) => void } = {},
) {
  const sockets = new Set<net.Socket>();
  const pairs = new Set<[net.Socket, net.Socket]>();
  let paused = false;
  let dropping = false;
  let accepted = 0;
  let server: net.Server | undefined;
  let port = 0;

  async function listen() {
    server = net.createServer((client) => {
      const connection = ++accepted;
      if (dropping) {
        client.destroy();
        return;
      }
      const upstream = net.connect(target.port, target.host);
      const pair: [net.Socket, net.Socket] = [client, upstream];
      pairs.add(pair);
      for (const s of pair) {
        sockets.add(s);
        s.on("close", () => {
          sockets.delete(s);
          pairs.delete(pair);
        });
        s.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      const { tap } = options;
      if (tap) client.on("data", (chunk: Buffer) => tap(connection, chunk));
      if (paused) hold(pair);
      else client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server?.listen(port, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
  }

  /** Stops relaying in both directions: what is sent waits in the sockets' buffers. */
  function hold([client, upstream]: [net.Socket, net.Socket]) {
    client.unpipe(upstream);
    upstream.unpipe(client);
    client.pause();
    upstream.pause();
  }

  await listen();
  return {
    get port() {
      return port;
    },
    /** Refuses new connections and drops the open ones. */
    async cut() {
      const closed = new Promise<void>((resolve) => server?.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    /** Connections accepted so far: the connection attempts that reached the proxy. */
    get accepted() {
      return accepted;
    },
    /**
     * Drops the open connections and closes each new one as soon as it is accepted (a server
     * that turns clients away): unlike cut(), every connection attempt is still counted.
     */
    drop() {
      dropping = true;
      for (const s of sockets) s.destroy();
    },
    /** Accepts connections again, on the same port (after cut() or drop()). */
    async restore() {
      dropping = false;
      if (!server?.listening) await listen();
    },
    /**
     * Keeps every connection (open and new) open but relays nothing: a server that stopped
     * answering. What was sent meanwhile goes through on resume.
     */
    pause() {
      paused = true;
      for (const pair of pairs) hold(pair);
    },
    resume() {
      paused = false;
      for (const [client, upstream] of pairs) client.pipe(upstream).pipe(client);
    },
    close() {
      for (const s of sockets) s.destroy();
      server?.close();
    },
  };
}
