//! Service configuration read from the environment the lab sets for each instance.

use crate::error::KitError;

/// What every scenario service is told at start (the service contract: docs/AUTHORING.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Port to listen on, on 127.0.0.1. The lab picks a free one per instance.
    pub port: u16,
    /// PostgreSQL URL, e.g. `postgres://postgres@127.0.0.1:54012/t1_01`.
    pub database_url: String,
    /// Label for this instance in logs and metrics; several instances may run at once.
    pub instance_id: String,
    /// Redis URL, for scenarios whose topology has Redis.
    pub redis_url: Option<String>,
}

impl Config {
    /// Reads PORT, DATABASE_URL, INSTANCE_ID (default "1") and REDIS_URL (optional).
    pub fn from_env() -> Result<Config, KitError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Same as [`Config::from_env`] with the variables taken from `lookup`, so tests need
    /// not change the process environment (which other threads may be reading).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, KitError> {
        const PORT_EXPECTED: &str = "a port number from 1 to 65535";
        let port_text = required(&lookup, "PORT", PORT_EXPECTED)?;
        let port = port_text
            .trim()
            .parse::<u16>()
            .map_err(|_| KitError::Config {
                var: "PORT",
                expected: PORT_EXPECTED,
                found: Some(port_text.clone()),
            })?;
        if port == 0 {
            return Err(KitError::Config {
                var: "PORT",
                expected: PORT_EXPECTED,
                found: Some(port_text),
            });
        }
        const URL_EXPECTED: &str = "a URL starting with postgres:// or postgresql://";
        let database_url = required(&lookup, "DATABASE_URL", URL_EXPECTED)?;
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(KitError::Config {
                var: "DATABASE_URL",
                expected: URL_EXPECTED,
                found: Some(database_url),
            });
        }
        let instance_id = lookup("INSTANCE_ID")
            .filter(|id| !id.trim().is_empty())
            .unwrap_or_else(|| "1".to_owned());
        let redis_url = lookup("REDIS_URL").filter(|url| !url.trim().is_empty());
        Ok(Config {
            port,
            database_url,
            instance_id,
            redis_url,
        })
    }
}

/// An unset variable and an empty one are the same mistake, so both are "not set".
fn required(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    expected: &'static str,
) -> Result<String, KitError> {
    match lookup(var) {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(KitError::Config {
            var,
            expected,
            found: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn reads_all_variables_and_defaults_the_instance_id() {
        let config = Config::from_lookup(env(&[
            ("PORT", "4000"),
            ("DATABASE_URL", "postgres://u@127.0.0.1:1/db"),
        ]))
        .unwrap();
        assert_eq!(config.port, 4000);
        assert_eq!(config.instance_id, "1");
        assert_eq!(config.redis_url, None);
    }

    #[test]
    fn missing_port_names_the_variable() {
        let err = Config::from_lookup(env(&[("DATABASE_URL", "postgres://x")])).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("PORT"), "{message}");
        assert!(message.contains("not set"), "{message}");
    }

    #[test]
    fn bad_port_names_the_variable_and_the_value() {
        let err = Config::from_lookup(env(&[("PORT", "80a"), ("DATABASE_URL", "postgres://x")]))
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("PORT") && message.contains("80a"),
            "{message}"
        );
        assert!(message.contains("port number"), "{message}");
    }

    #[test]
    fn database_url_must_be_a_postgres_url() {
        let err = Config::from_lookup(env(&[("PORT", "4000"), ("DATABASE_URL", "mysql://x")]))
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("DATABASE_URL") && message.contains("postgres://"),
            "{message}"
        );
    }
}
