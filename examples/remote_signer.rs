//! A certificate credential whose private key this process never holds:
//! every client assertion is signed by a separate process over loopback, a
//! stand-in for a hardware security module or a cloud key service. The
//! orchestrator's `Signer` is asynchronous, so the token fetch simply
//! awaits the signature (the sans-IO core asks for it with
//! `Output::NeedAssertion`).
//!
//! ```sh
//! cargo run -p ta-examples --example remote_signer
//! ```
//!
//! The example starts itself a second time as the signing service
//! (`remote_signer --signing-service`), which prints its address, signs
//! what it is sent, and ends when its standard input closes.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use ta_bootstrap::hyper::HyperTransport;
use ta_bootstrap::{Bootstrapper, ClientCredentialsProvider, Credential, Signer, TokenProvider};
use ta_emulator::{DEFAULT_CLIENT_ID, DEFAULT_ENDPOINT, Emulator, EmulatorConfig};
use ta_protocol::aad::{ClientId, SignerError, TokenEndpoint};
use ta_protocol::{AllowedOrigins, Config, OriginPolicy, Transport, async_trait};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The signing service's side: holds the key, signs each line it is sent
/// (base64 in, base64 RS256 signature out).
async fn signing_service() -> Result<(), Box<dyn Error>> {
    // The key lives here and only here (an HSM would never export it).
    let pem = ta_emulator::DEV_CLIENT_CERTIFICATE_KEY.as_bytes();
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem)?;
    let key = Arc::new(RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| e.to_string())?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    // The parent holds our stdin: when it goes, so do we.
    tokio::spawn(async {
        let mut stdin = BufReader::new(tokio::io::stdin());
        let mut line = String::new();
        while stdin.read_line(&mut line).await.is_ok_and(|n| n > 0) {}
        std::process::exit(0);
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let key = Arc::clone(&key);
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = match STANDARD.decode(line.trim()) {
                    Ok(message) => {
                        let mut signature = vec![0; key.public().modulus_len()];
                        match key.sign(
                            &ring::signature::RSA_PKCS1_SHA256,
                            &ring::rand::SystemRandom::new(),
                            &message,
                            &mut signature,
                        ) {
                            Ok(()) => STANDARD.encode(signature),
                            Err(e) => format!("ERR {e}"),
                        }
                    }
                    Err(e) => format!("ERR {e}"),
                };
                if write
                    .write_all(format!("{reply}\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }
}

/// The orchestrator's side: a `Signer` that asks the service.
#[derive(Debug)]
struct RemoteSigner {
    service: SocketAddr,
    thumbprint: [u8; 20],
    signatures: AtomicUsize,
}

#[async_trait::async_trait]
impl Signer for RemoteSigner {
    fn certificate_sha1(&self) -> [u8; 20] {
        self.thumbprint
    }

    async fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let failed =
            |e: &dyn std::fmt::Display| SignerError::new(format!("the signing service: {e}"));
        let stream = TcpStream::connect(self.service)
            .await
            .map_err(|e| failed(&e))?;
        let (read, mut write) = stream.into_split();
        write
            .write_all(format!("{}\n", STANDARD.encode(message)).as_bytes())
            .await
            .map_err(|e| failed(&e))?;
        let mut reply = String::new();
        BufReader::new(read)
            .read_line(&mut reply)
            .await
            .map_err(|e| failed(&e))?;
        if let Some(error) = reply.strip_prefix("ERR ") {
            return Err(failed(&error.trim()));
        }
        self.signatures.fetch_add(1, Ordering::Relaxed);
        STANDARD.decode(reply.trim()).map_err(|e| failed(&e))
    }
}

/// Starts the signing service as a child process; its address.
async fn start_service() -> Result<(tokio::process::Child, SocketAddr), Box<dyn Error>> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--signing-service")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).await?;
    let addr = first.trim().parse()?;
    Ok((child, addr))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    if std::env::args().nth(1).as_deref() == Some("--signing-service") {
        return signing_service().await;
    }
    let (child, service) = start_service().await?;
    println!(
        "signing service: process {} on {service}",
        child.id().unwrap_or_default()
    );

    // Only the certificate is read here, for its thumbprint.
    let certificate_pem = ta_emulator::dev_client_certificate_pem()?;
    let certificate = CertificateDer::from_pem_slice(certificate_pem.as_bytes())?;
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &certificate);
    let mut thumbprint = [0u8; 20];
    thumbprint.copy_from_slice(digest.as_ref());
    let signer = Arc::new(RemoteSigner {
        service,
        thumbprint,
        signatures: AtomicUsize::new(0),
    });

    let emulator =
        Emulator::start(EmulatorConfig::default().with_dev_client_certificate()?).await?;
    let transport: Arc<dyn Transport> = Arc::new(
        HyperTransport::builder()
            .add_root_certificates_pem(emulator.ca_pem().ok_or("no CA")?.as_bytes())?
            .build()?,
    );
    let tokens = Arc::new(
        ClientCredentialsProvider::builder(
            Arc::clone(&transport),
            TokenEndpoint::parse(&emulator.token_url(), false)?,
            ClientId::new(DEFAULT_CLIENT_ID)?,
            Credential::Certificate(Arc::clone(&signer) as Arc<dyn Signer>),
        )
        .build(),
    );
    let config = Config::builder(&emulator.discover_url(), DEFAULT_ENDPOINT)
        .build()?
        .into_shared();
    let bootstrapper =
        Bootstrapper::builder(config, transport, tokens as Arc<dyn TokenProvider>).build();
    let origins = AllowedOrigins::parse_list("https://contoso.com", OriginPolicy::default())?;
    let minted = bootstrapper.mint(origins).await?;
    let signed = signer.signatures.load(Ordering::Relaxed);
    println!(
        "minted with a certificate signed elsewhere: {signed} assertion(s) signed by the service; the widget token expires {}",
        minted.expiry
    );
    if signed == 0 {
        return Err("no assertion went through the signing service".into());
    }
    drop(child);
    Ok(())
}
