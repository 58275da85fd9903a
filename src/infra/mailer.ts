// Outgoing mail. SMTP (nodemailer) when SMTP_URL is set, which production requires; without
// it, development writes each message to the log so that its links can be followed, and
// other environments only note that a message was dropped.
import nodemailer from "nodemailer";
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
    const transport = nodemailer.createTransport(config.mail.smtpUrl, { from: config.mail.from });
    return {
      async send(mail) {
        await transport.sendMail({ from: config.mail.from, ...mail });
      },
      close: () => transport.close(),
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
