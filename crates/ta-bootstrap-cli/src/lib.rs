//! What the `ta-bootstrap` executable reads from text it does not control,
//! as a library: the `--config` file ([`file_config`]), a secret's value
//! ([`secret_arg`]), the `inspect` command's token ([`token_claims`]) and an
//! `--agent` spec ([`agent_spec`]).
//!
//! The executable reads them through this library, and the fuzz targets
//! (`crates/ta-fuzz`) reach them here. Nothing here touches a file, a
//! socket or the clock.

pub mod agent_spec;
pub mod file_config;
pub mod secret_arg;
pub mod token_claims;
