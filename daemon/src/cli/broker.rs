//! The broker arguments shared by the commands that publish (`revoke`, `card erase`,
//! `card publish-receipt`, `enrol`), and their resolution into connection options and a
//! [`palmgate::station::EventPublisher`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use palmgate::mqtt::oneshot::OneShotOptions;
use palmgate::station::EventPublisher;

/// Where to publish: a broker URL with TLS options, or the `[mqtt]` section of a palmgate
/// configuration file.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// Broker URL: mqtt://HOST[:PORT] (loopback only) or mqtts://HOST[:PORT].
    #[arg(long, value_name = "URL")]
    broker: Option<String>,
    /// CA certificate(s) (PEM) that sign the broker's certificate (mqtts).
    #[arg(long, value_name = "FILE", requires = "broker")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM), when the broker wants one.
    #[arg(
        long,
        value_name = "FILE",
        requires = "client_key",
        requires = "broker"
    )]
    client_cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "client_cert",
        requires = "broker"
    )]
    client_key: Option<PathBuf>,
    /// MQTT user name.
    #[arg(long, value_name = "NAME", requires = "broker")]
    username: Option<String>,
    /// File whose first line is the MQTT password.
    #[arg(long, value_name = "FILE", requires = "username")]
    password_file: Option<PathBuf>,
    /// First topic level(s) (`mqtt.topic_prefix`; default palmgate).
    #[arg(long, value_name = "PREFIX", requires = "broker")]
    topic_prefix: Option<String>,
    /// Take the broker, TLS files, credentials and topic prefix from this palmgate
    /// configuration's [mqtt] section instead.
    #[arg(long = "mqtt-config", value_name = "FILE", conflicts_with = "broker")]
    mqtt_config: Option<PathBuf>,
    /// Give up when the broker has not acknowledged everything after this many seconds.
    #[arg(long, value_name = "S", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout_s: u64,
}

/// A resolved broker: connection options, topic prefix, and the configuration's gate id when
/// the options came from a configuration file.
pub struct Broker {
    /// Connection options.
    pub options: OneShotOptions,
    /// Topic prefix.
    pub prefix: String,
    /// `gate.id` of the configuration file, when one was given.
    pub config_gate: Option<String>,
}

impl BrokerArgs {
    /// Resolves the options (`tool` names the MQTT client id); `None` when no broker was given.
    pub fn resolve(&self, tool: &str) -> anyhow::Result<Option<Broker>> {
        let timeout = Duration::from_secs(self.timeout_s);
        if let Some(path) = &self.mqtt_config {
            let settings = palmgate::config::load(path).map_err(|error| {
                anyhow::anyhow!(
                    "configuration {}:\n{}",
                    path.display(),
                    error
                        .problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })?;
            let mut options = OneShotOptions::from_settings(&settings.mqtt, tool);
            options.timeout = timeout;
            return Ok(Some(Broker {
                options,
                prefix: settings.mqtt.topic_prefix.clone(),
                config_gate: Some(settings.gate.id.clone()),
            }));
        }
        let Some(url) = &self.broker else {
            return Ok(None);
        };
        let mut options = OneShotOptions::new(url, tool)?;
        options.ca_file = self.ca.clone();
        options.cert_file = self.client_cert.clone();
        options.key_file = self.client_key.clone();
        options.username = self.username.clone();
        if let Some(path) = &self.password_file {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading password file {}", path.display()))?,
            );
            let password = text.lines().next().unwrap_or_default().to_owned();
            options.password = Some(palmgate::config::Secret::new(password));
        }
        options.timeout = timeout;
        let prefix = self
            .topic_prefix
            .clone()
            .unwrap_or_else(|| "palmgate".to_owned());
        check_topic_level("--topic-prefix", &prefix, true)?;
        Ok(Some(Broker {
            options,
            prefix,
            config_gate: None,
        }))
    }
}

/// Refuses topic levels that would change the topic's meaning (wildcards, empty levels).
pub fn check_topic_level(what: &str, value: &str, allow_slash: bool) -> anyhow::Result<()> {
    let bad = value.is_empty()
        || value.len() > 128
        || value.contains(['+', '#', '\0'])
        || (!allow_slash && value.contains('/'))
        || value.split('/').any(str::is_empty);
    if bad {
        bail!("{what} {value:?}: not a valid topic level (no +, #, empty levels or NUL)");
    }
    Ok(())
}

/// Where a station's events (`card.erased`, `enrol.*`) go.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// Station id (the event's `gate`): publishes on `<prefix>/<station>/event/card.erased`
    /// (default with --mqtt-config: its gate.id).
    #[arg(long, value_name = "ID")]
    pub station: Option<String>,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// The publisher `args` name: `None` without a broker; an error for a half-given destination.
pub fn resolve_publisher(args: &PublishArgs) -> anyhow::Result<Option<EventPublisher>> {
    let Some(broker) = args.broker.resolve("palmgate-station")? else {
        if args.station.is_some() {
            bail!("--station needs a broker: --broker URL or --mqtt-config FILE");
        }
        return Ok(None);
    };
    let station = args
        .station
        .clone()
        .or_else(|| broker.config_gate.clone())
        .context("--broker needs --station ID (the station's id in the event topic)")?;
    check_topic_level("--station", &station, false)?;
    Ok(Some(EventPublisher::new(
        broker.options,
        broker.prefix,
        station,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_levels_are_checked() {
        assert!(check_topic_level("--gate", "gate-1", false).is_ok());
        assert!(check_topic_level("--topic-prefix", "site/a", true).is_ok());
        for bad in ["", "a/b", "+", "g#", "a//b"] {
            assert!(check_topic_level("--gate", bad, false).is_err(), "{bad}");
        }
    }
}
