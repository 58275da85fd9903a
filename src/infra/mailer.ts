// Outgoing mail. SMTP (nodemailer) when SMTP_URL is set, which production requires; without
// it, development writes each message to the log so that its links can be followed, and
// other environments only note that a message was dropped.
import type { Transporter } from "nodemailer";
import type { Config } from "../config.ts";
import type { Logger } from "./logger.ts";

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  send(mail: Mail): Promise<void>;
  close(): void;
}

export function createMailer(config: Config, logger: Logger): Mailer {
  if (config.mail.smtpUrl) {
    const smtpUrl = config.mail.smtpUrl;
    // Loaded with the first message, not at start: nodemailer costs ~130 ms of module loading
    // that a start (and most processes' whole life) does not need.
    let transport: Promise<Transporter> | undefined;
    let closed = false;
    const close = (t: Transporter) => {
      if (closed) t.close();
      return t;
    };
    return {
      async send(mail) {
        transport ??= import("nodemailer").then(
          (m) => close(m.default.createTransport(smtpUrl, { from: config.mail.from })),
          (err: unknown) => {
            transport = undefined; // tried again with the next message
            throw err;
          },
        );
        await (await transport).sendMail({ from: config.mail.from, ...mail });
      },
      close() {
        closed = true;
        void transport?.then(close, () => {});
      },
    };
  }
  return {
    async send(mail) {
      if (config.env === "development") logger.info({ mail }, "development mailer: not sent");
      else logger.warn({ to: mail.to, subject: mail.subject }, "SMTP_URL is not set: mail dropped");
    },
    close() {},
  };
}
