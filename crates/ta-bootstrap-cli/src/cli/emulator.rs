//! `emulator`: runs the emulator standalone until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use ta_emulator::{Emulator, EmulatorConfig};

use super::config_error;

/// Arguments of `emulator`.
#[derive(Debug, Args)]
pub(crate) struct EmulatorArgs {
    /// The loopback address to listen on.
    #[arg(long, env = "TA_EMULATOR_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// A TOML configuration file (tenant, applications, quirks, faults).
    #[arg(long, env = "TA_EMULATOR_CONFIG")]
    config: Option<PathBuf>,
    /// Where to write the emulator's CA certificate (PEM).
    #[arg(long, env = "TA_EMULATOR_CA_OUT", default_value = "ta-emulator-ca.pem")]
    ca_out: PathBuf,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
}

pub(crate) async fn run(args: EmulatorArgs) -> u8 {
    let config = match &args.config {
        Some(path) => match EmulatorConfig::from_file(path) {
            Ok(config) => config,
            Err(e) => return config_error(e),
        },
        None => EmulatorConfig::default(),
    };
    let mut config = config.with_listen(args.listen);
    if args.plain_http {
        config = config.with_plain_http();
    }
    let emulator = match Emulator::start(config).await {
        Ok(emulator) => emulator,
        Err(e) => return config_error(e),
    };
    let ca_note = if emulator.ca_pem().is_some() {
        if let Err(e) = emulator.write_ca_pem(&args.ca_out) {
            return config_error(format!("writing {}: {e}", args.ca_out.display()));
        }
        format!("{}", args.ca_out.display())
    } else {
        "(plain HTTP: no CA)".to_owned()
    };
    let app = emulator.config().applications.first();
    let client_id = app.map_or("", |a| a.client_id.as_str());
    let secret = app.and_then(|a| a.client_secret.as_deref()).unwrap_or("");
    let endpoint = app
        .and_then(|a| a.endpoints.first())
        .map_or("", |e| e.sip.as_str());
    let insecure = if args.plain_http {
        " --allow-insecure-loopback"
    } else {
        ""
    };
    let ca_flag = if args.plain_http {
        String::new()
    } else {
        format!(" --ca-file {}", args.ca_out.display())
    };
    out!("ta-emulator listening on {}", emulator.addr());
    out!("discover URL:   {}", emulator.discover_url());
    out!("token URL:      {}", emulator.token_url());
    out!("CA certificate: {ca_note}");
    out!("development credentials (they open nothing but this emulator):");
    out!("  TA_CLIENT_ID={client_id}");
    out!("  TA_CLIENT_SECRET={secret}");
    out!("  TA_ENDPOINT_ID={endpoint}");
    out!("try:");
    out!(
        "  ta-bootstrap token --discover-url {} --token-url {} --client-id {client_id} --client-secret {secret} --endpoint-id {endpoint} --allowed-origin https://contoso.com{ca_flag}{insecure}",
        emulator.discover_url(),
        emulator.token_url()
    );
    out!(
        "stats: {}/_emulator/stats (Ctrl-C stops)",
        emulator
            .discover_url()
            .replace("/platformservice/discover", "")
    );
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error: config: cannot wait for Ctrl-C: {e}");
    }
    emulator.shutdown().await;
    0
}
