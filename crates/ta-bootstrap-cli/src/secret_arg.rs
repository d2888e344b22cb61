//! A secret given on the command line, in the environment or in the
//! configuration file.

/// A secret from the command line, the environment or a configuration
/// file; `Debug` hides it.
#[derive(Clone)]
pub struct SecretArg(String);

impl SecretArg {
    /// A secret given in code.
    pub fn new(secret: &str) -> Self {
        Self(secret.to_owned())
    }

    /// The secret itself, for the one place that hands it on.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// From the configuration file: a string only. Every other value is refused
/// with a message of ours, because the TOML library's own ("invalid type:
/// integer `…`, expected a string") would quote the secret.
impl<'de> serde::Deserialize<'de> for SecretArg {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SecretArg;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<SecretArg, E> {
                Ok(SecretArg(value.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, value: String) -> Result<SecretArg, E> {
                Ok(SecretArg(value))
            }
        }
        deserializer
            .deserialize_string(Visitor)
            .map_err(|_: D::Error| {
                serde::de::Error::custom(
                    "`client-secret` must be a string (the value is not shown)",
                )
            })
    }
}

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::SecretArg;

    #[test]
    fn debug_hides_the_secret() {
        let secret = SecretArg::new("sekrit-value");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose(), "sekrit-value");
    }
}
