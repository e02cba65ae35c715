//! Outgoing mail (password-reset links and invitations) over SMTP with lettre, configured by
//! `SMTP_*` (see `config::SmtpConfig`). Without SMTP the mailer is "log only": callers write
//! the link to the log for the operator instead (see `auth::reset`).
//!
//! Mails are sent in the background ([`Mailer::send_in_background`]): the page answers at
//! once, in the same time whether or not a mail goes out (no timing oracle for accounts), and
//! a slow or failing SMTP server never holds a request. A failure is logged with a reference
//! id; the person only ever sees the neutral answer. No more than [`SENDS_AT_ONCE`] mails are
//! sent at a time. (Not through the durable job queue: its payloads are stored, and a link's
//! token must never be.)

use std::sync::Arc;

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, ExposeSecret, SmtpTls};

/// SMTP conversations at once.
pub const SENDS_AT_ONCE: usize = 4;
/// Mails waiting or being sent at most: when the SMTP server stalls, more are dropped (and
/// logged) instead of piling up in memory, each holding a link.
pub const MAILS_WAITING: usize = 100;

/// One plain-text mail to one person.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Sends mail, or knows that it cannot.
pub struct Mailer {
    smtp: Option<Smtp>,
    sends: Arc<tokio::sync::Semaphore>,
    waiting: Arc<tokio::sync::Semaphore>,
}

struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// From the configuration; an unparseable `SMTP_FROM` or a host name TLS cannot check is
    /// an error at start-up, not at the first mail.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let smtp = match &config.smtp {
            None => None,
            Some(c) => {
                let from: Mailbox =
                    c.from.parse().with_context(|| format!("SMTP_FROM {:?} is not an address", c.from))?;
                let tls = match c.tls {
                    SmtpTls::StartTls => Tls::Required(TlsParameters::new(c.host.clone())?),
                    SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(c.host.clone())?),
                    SmtpTls::None => Tls::None,
                };
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.clone())
                    .port(c.port)
                    .tls(tls)
                    .timeout(Some(c.timeout));
                if let (Some(user), Some(password)) = (&c.username, &c.password) {
                    builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
                }
                Some(Smtp { transport: builder.build(), from })
            }
        };
        Ok(Self {
            smtp,
            sends: Arc::new(tokio::sync::Semaphore::new(SENDS_AT_ONCE)),
            waiting: Arc::new(tokio::sync::Semaphore::new(MAILS_WAITING)),
        })
    }

    /// Is there an SMTP server to send through?
    pub fn is_configured(&self) -> bool {
        self.smtp.is_some()
    }

    /// Send one mail now (waits for the SMTP server).
    pub async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let smtp = self.smtp.as_ref().context("no SMTP server is configured")?;
        let to: Mailbox = mail.to.parse().with_context(|| format!("{:?} is not an address", mail.to))?;
        let message = Message::builder()
            .from(smtp.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)?;
        let _permit = self.sends.acquire().await?;
        smtp.transport.send(message).await.context("the SMTP server did not take the mail")?;
        Ok(())
    }

    /// Send in a task of its own; `what` names the mail in the log (never its content).
    pub fn send_in_background(self: &Arc<Self>, mail: Mail, what: &'static str, person: i32) {
        let Ok(place) = self.waiting.clone().try_acquire_owned() else {
            let reference = crate::telemetry::new_reference();
            tracing::error!(%reference, person, "{what} mail not sent: {MAILS_WAITING} mails are already waiting for the SMTP server");
            return;
        };
        let mailer = self.clone();
        tokio::spawn(async move {
            let _place = place;
            match mailer.send(mail).await {
                Ok(()) => tracing::info!(person, "{what} mail sent"),
                Err(err) => {
                    let reference = crate::telemetry::new_reference();
                    tracing::error!(%reference, person, error = format!("{err:#}"), "{what} mail not sent");
                }
            }
        });
    }
}
