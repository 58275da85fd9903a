// The statements a server sends PostgreSQL, read off the wire through a TCP proxy: what a
// request really costs in round trips, whatever the ORM above says. Reads the frontend
// protocol (after each connection's startup message, every message is a type byte and a
// length): Parse names a statement and carries its SQL, Bind runs a named (or the unnamed)
// statement, Query is a simple-protocol statement.
import { startProxy } from "./tcpProxy.ts";

export interface Statement {
  connection: number;
  sql: string;
  /** The transaction it ran in (numbered from BEGIN to COMMIT or ROLLBACK on its connection), if any. */
  transaction: number | null;
}

export async function startPgTap(target: { host: string; port: number }) {
  const executed: Statement[] = [];
  let transactions = 0;
  const streams = new Map<
    number,
    { buffer: Buffer; started: boolean; named: Map<string, string>; unnamed: string; transaction: number | null }
  >();
  const waiters: (() => void)[] = [];
  const inTransaction = () => [...streams.values()].some((stream) => stream.transaction !== null);
  const run = (connection: number, sql: string) => {
    const stream = streams.get(connection)!;
    if (/^\s*BEGIN\b/i.test(sql)) stream.transaction = ++transactions;
    executed.push({ connection, sql, transaction: stream.transaction });
    if (/^\s*(COMMIT|ROLLBACK)\b/i.test(sql)) {
      stream.transaction = null;
      if (!inTransaction()) for (const wake of waiters.splice(0)) wake();
    }
  };
  const cstring = (buf: Buffer, at: number) => {
    const end = buf.indexOf(0, at);
    return { value: buf.toString("utf8", at, end), next: end + 1 };
  };
  const proxy = await startProxy(target, {
    tap(connection, chunk) {
      let stream = streams.get(connection);
      if (!stream) {
        stream = { buffer: Buffer.alloc(0), started: false, named: new Map(), unnamed: "", transaction: null };
        streams.set(connection, stream);
      }
      stream.buffer = Buffer.concat([stream.buffer, chunk]);
      for (;;) {
        const { buffer } = stream;
        if (!stream.started) {
          // The startup message (or an SSLRequest before it): a length, no type byte.
          if (buffer.length < 8) return;
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) return;
          stream.started = buffer.readInt32BE(4) !== 80877103; // an SSLRequest is followed by the startup
          stream.buffer = buffer.subarray(length);
          continue;
        }
        if (buffer.length < 5) return;
        const length = buffer.readInt32BE(1);
        if (buffer.length < 1 + length) return;
        const body = buffer.subarray(5, 1 + length);
        const type = String.fromCharCode(buffer[0] as number);
        if (type === "P") {
          const name = cstring(body, 0);
          const sql = cstring(body, name.next).value;
          if (name.value) stream.named.set(name.value, sql);
          else stream.unnamed = sql;
        } else if (type === "B") {
          const portal = cstring(body, 0);
          const name = cstring(body, portal.next).value;
          run(connection, name ? (stream.named.get(name) ?? `<unknown ${name}>`) : stream.unnamed);
        } else if (type === "Q") {
          run(connection, cstring(body, 0).value);
        }
        stream.buffer = buffer.subarray(1 + length);
      }
    },
  });
  return {
    proxy,
    /** Every statement run through the proxy so far, in the order they were sent. */
    executed,
    /** Resolves once no connection is inside a transaction: every one begun so far has ended. */
    settled(): Promise<void> {
      return inTransaction() ? new Promise((resolve) => waiters.push(resolve)) : Promise.resolve();
    },
  };
}
