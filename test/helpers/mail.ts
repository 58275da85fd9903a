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
  const waiting: { matches: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    onData(stream, _session, callback) {
      simpleParser(stream).then((parsed) => {
        const to = (Array.isArray(parsed.to) ? parsed.to[0] : parsed.to)?.value[0]?.address?.toLowerCase() ?? "";
        const message = { to, subject: parsed.subject ?? "", text: parsed.text ?? "" };
        received.push(message);
        const taker = waiting.find((w) => w.matches(message));
        if (taker) {
          waiting.splice(waiting.indexOf(taker), 1);
          taker.resolve(message);
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
    /** The next message to `to` (whose subject matches, if given) not taken yet; waits for it. */
    next(to: string, subject = /./): Promise<Message> {
      const matches = (m: Message) => m.to === to.toLowerCase() && subject.test(m.subject);
      const index = received.findIndex(matches);
      if (index >= 0) return Promise.resolve(received.splice(index, 1)[0] as Message);
      return new Promise((resolve) =>
        waiting.push({
          matches,
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

export type MailCatcher = Awaited<ReturnType<typeof startMailCatcher>>;
