// A real SMTP server on a free port: the API sends through it, tests read what arrived.
import type { AddressInfo } from "node:net";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

export interface Message {
  to: string;
  subject: string;
  text: string;
}

export async function startMailCatcher() {
  const received: Message[] = [];
  const waiting: { to: string; resolve: (m: Message) => void }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    onData(stream, _session, callback) {
      simpleParser(stream).then((parsed) => {
        const to = (Array.isArray(parsed.to) ? parsed.to[0] : parsed.to)?.value[0]?.address?.toLowerCase() ?? "";
        const message = { to, subject: parsed.subject ?? "", text: parsed.text ?? "" };
        received.push(message);
        for (const w of waiting.filter((w) => w.to === to)) {
          waiting.splice(waiting.indexOf(w), 1);
          w.resolve(message);
        }
        callback();
      }, callback);
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    /** The next message to `to` that has not been taken yet; waits for it to arrive. */
    next(to: string): Promise<Message> {
      const index = received.findIndex((m) => m.to === to.toLowerCase());
      if (index >= 0) return Promise.resolve(received.splice(index, 1)[0] as Message);
      return new Promise((resolve) =>
        waiting.push({
          to: to.toLowerCase(),
          resolve: (m) => {
            received.splice(received.indexOf(m), 1);
            resolve(m);
          },
        }),
      );
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The `token` query parameter of the first link in a message. */
export function tokenFrom(message: Message): string {
  const token = /[?&]token=([\w-]+)/.exec(message.text)?.[1];
  if (!token) throw new Error(`no token link in: ${message.text}`);
  return token;
}
