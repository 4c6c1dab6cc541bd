//! The TLS engine's speed, measured for `cargo xtask bench tls`: a server on one core, a load
//! client that makes full TLS 1.3 handshakes against it or against `openssl s_server`, bulk
//! transfer through one TLS 1.3 connection, and the raw AEAD speed of aws-lc-rs.
//!
//! - `cert --out DIR`: a self-signed ECDSA P-256 certificate and key for both servers, as
//!   `DIR/bench-ecdsa.crt` and `DIR/bench-ecdsa.key`.
//! - `serve --port P --cert F --key F`: Postern's [`TlsAcceptor`] (TLS 1.3 only) on
//!   127.0.0.1:P, one thread (run it under `taskset` to give it one core). Each connection is
//!   served as `openssl s_server` serves the load client: handshake, read until the client's
//!   close_notify, answer with ours.
//! - `load --port P[,P…] --seconds S --concurrency C`: C connections at a time, spread over the
//!   ports in turn, each a full handshake (no resumption), one byte written, close_notify, read
//!   until the server closes. Prints `handshakes N seconds S per_second R failures F`.
//! - `bulk --suite aes256|chacha --mib N`: in one process, the acceptor on one thread and a
//!   client forced to that suite on another; N MiB in 1 MiB writes. Prints the transfer's MB/s
//!   (10^6 bytes) and the CPU time each side used.
//! - `records --suite aes256|chacha --mib N`: the same transfer between a rustls client and
//!   server connection in one thread, the records handed over in memory: the engine's own cost
//!   per byte without the kernel's TCP copies and wake-ups. Prints MB per CPU-second of each
//!   side (the thread's CPU time while it ran that side's calls).
//! - `seal --suite aes256|chacha --seconds S`: aws-lc-rs sealing 16 KiB blocks, the figure
//!   `openssl speed -evp` gives for OpenSSL.

#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use nix::time::{ClockId, clock_gettime};
use postern_config::{CipherString, ProtocolRange, ServiceTls, TlsSettings, TlsVersion};
use postern_tls::{Identity, KeyKind, TlsAcceptor};
use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs::{cipher_suite, default_provider, kx_group};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, ServerConfig, ServerConnection,
    SignatureScheme, SupportedCipherSuite,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

const USAGE: &str = "usage: tls_bench cert --out DIR
       tls_bench serve --port P --cert FILE --key FILE
       tls_bench load --port P[,P...] --seconds S --concurrency C
       tls_bench bulk --suite aes256|chacha --mib N
       tls_bench records --suite aes256|chacha --mib N
       tls_bench seal --suite aes256|chacha --seconds S";

/// The name in the benchmark certificate, and the one the client asks for.
const SERVER_NAME: &str = "bench.postern.test";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        return Err(USAGE.into());
    };
    let options = Options(rest);
    match command.as_str() {
        "cert" => cert(&options),
        "serve" => serve(&options),
        "load" => load(&options),
        "bulk" => bulk(&options),
        "records" => records(&options),
        "seal" => seal(&options),
        _ => Err(USAGE.into()),
    }
}

fn cert(options: &Options<'_>) -> Result<()> {
    let dir = Path::new(options.text("--out")?);
    let (chain, key) = Identity::self_signed(SERVER_NAME, KeyKind::EcdsaP256)?.to_pem()?;
    fs::create_dir_all(dir)?;
    fs::write(dir.join("bench-ecdsa.crt"), chain)?;
    fs::write(dir.join("bench-ecdsa.key"), key)?;
    Ok(())
}

fn serve(options: &Options<'_>) -> Result<()> {
    let port: u16 = options.number("--port")?;
    let identity = Identity::from_pem(
        &fs::read(options.text("--cert")?)?,
        &fs::read(options.text("--key")?)?,
    )?;
    let acceptor = TlsAcceptor::new(&policy()?, &[identity])?;
    one_thread()?.block_on(accept_all(acceptor, port))
}

async fn accept_all(acceptor: TlsAcceptor, port: u16) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let failures = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        let (acceptor, failures) = (acceptor.clone(), failures.clone());
        tokio::spawn(async move {
            if let Err(e) = receive(&acceptor, stream).await {
                // The readiness probe of xtask is one of these; more point at a problem.
                if failures.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("tls_bench serve: {e}");
                }
            }
        });
    }
}

/// Serves one connection: handshake, read until the client's close_notify, send ours. Answers
/// the cipher suite and the bytes read.
async fn receive(acceptor: &TlsAcceptor, stream: TcpStream) -> Result<(String, u64)> {
    stream.set_nodelay(true)?;
    let (mut tls, negotiated) = acceptor.accept(stream).await?;
    let mut buffer = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = tls.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    tls.shutdown().await?;
    Ok((negotiated.cipher, total))
}

fn load(options: &Options<'_>) -> Result<()> {
    let ports = options
        .text("--port")?
        .split(',')
        .map(str::parse::<u16>)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let seconds: f64 = options.number("--seconds")?;
    let concurrency: usize = options.number("--concurrency")?;
    let config = Arc::new(client_config(&[
        cipher_suite::TLS13_AES_256_GCM_SHA384,
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ])?);
    let window = Duration::from_secs_f64(seconds);
    let (handshakes, failures, first_failure) = one_thread()?.block_on(async {
        let end = Instant::now() + window;
        let workers: Vec<_> = (0..concurrency)
            .map(|worker| {
                let addr = SocketAddr::from(([127, 0, 0, 1], ports[worker % ports.len()]));
                let connector = TlsConnector::from(config.clone());
                tokio::spawn(async move {
                    let (mut done, mut failed, mut first) = (0u64, 0u64, None);
                    while Instant::now() < end {
                        match handshake(&connector, addr).await {
                            Ok(()) if Instant::now() <= end => done += 1,
                            Ok(()) => {}
                            Err(e) => {
                                failed += 1;
                                first.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                    (done, failed, first)
                })
            })
            .collect();
        let (mut done, mut failed, mut first) = (0u64, 0u64, None);
        for worker in workers {
            let (d, f, e) = worker.await?;
            done += d;
            failed += f;
            first = first.or(e);
        }
        Ok::<_, BoxError>((done, failed, first))
    })?;
    if let Some(e) = first_failure {
        eprintln!("tls_bench load: first failure: {e}");
    }
    println!(
        "handshakes {handshakes} seconds {seconds:.3} per_second {:.1} failures {failures}",
        handshakes as f64 / seconds
    );
    Ok(())
}

/// One full handshake, then one byte and close_notify; done when the server has closed, which
/// it does only after it has checked our Finished.
async fn handshake(connector: &TlsConnector, addr: SocketAddr) -> Result<()> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut tls = connector
        .connect(ServerName::try_from(SERVER_NAME)?, stream)
        .await?;
    tls.write_all(b"x").await?;
    tls.shutdown().await?;
    let mut rest = Vec::new();
    match tls.read_to_end(&mut rest).await {
        // A server that closes without close_notify has still finished the handshake.
        Err(e) if e.kind() != io::ErrorKind::UnexpectedEof => Err(e.into()),
        _ => Ok(()),
    }
}

fn bulk(options: &Options<'_>) -> Result<()> {
    let suite = Suite::parse(options.text("--suite")?)?;
    let mib: u64 = options.number("--mib")?;
    let acceptor = TlsAcceptor::new(
        &policy()?,
        &[Identity::self_signed(SERVER_NAME, KeyKind::EcdsaP256)?],
    )?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> Result<(String, u64, Duration)> {
        one_thread()?.block_on(async {
            let (stream, _) = TcpListener::from_std(listener)?.accept().await?;
            let cpu = thread_cpu()?;
            let (cipher, bytes) = receive(&acceptor, stream).await?;
            Ok::<_, BoxError>((cipher, bytes, thread_cpu()? - cpu))
        })
    });

    let block = vec![0x5a_u8; 1 << 20];
    let connector = TlsConnector::from(Arc::new(client_config(&[suite.rustls()])?));
    let (elapsed, client_cpu) = one_thread()?.block_on(async {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut tls = connector
            .connect(ServerName::try_from(SERVER_NAME)?, stream)
            .await?;
        let (began, cpu) = (Instant::now(), thread_cpu()?);
        for _ in 0..mib {
            tls.write_all(&block).await?;
        }
        tls.shutdown().await?;
        // The server closes once it has read everything.
        tls.read_to_end(&mut Vec::new()).await?;
        Ok::<_, BoxError>((began.elapsed(), thread_cpu()? - cpu))
    })?;
    let (cipher, bytes, server_cpu) = server.join().map_err(|_| "the server thread panicked")??;
    if bytes != mib << 20 {
        return Err(format!("the server read {bytes} bytes of {}", mib << 20).into());
    }
    if cipher != suite.name() {
        return Err(format!("negotiated {cipher}, not {}", suite.name()).into());
    }
    let busier = client_cpu.max(server_cpu).as_secs_f64();
    println!(
        "cipher {cipher} bytes {bytes} seconds {:.3} mb_per_s {:.1} client_cpu_s {:.3} server_cpu_s {:.3} mb_per_cpu_s {:.1}",
        elapsed.as_secs_f64(),
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
        client_cpu.as_secs_f64(),
        server_cpu.as_secs_f64(),
        bytes as f64 / busier / 1e6,
    );
    Ok(())
}

fn records(options: &Options<'_>) -> Result<()> {
    let suite = Suite::parse(options.text("--suite")?)?;
    let mib: u64 = options.number("--mib")?;
    let (chain, key) = Identity::self_signed(SERVER_NAME, KeyKind::EcdsaP256)?.to_pem()?;
    let chain =
        CertificateDer::pem_slice_iter(&chain).collect::<std::result::Result<Vec<_>, _>>()?;
    let server_config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, PrivateKeyDer::from_pem_slice(&key)?)?;
    let mut client = ClientConnection::new(
        Arc::new(client_config(&[suite.rustls()])?),
        ServerName::try_from(SERVER_NAME)?,
    )?;
    let mut server = ServerConnection::new(Arc::new(server_config))?;
    let mut wire = Vec::with_capacity(2 << 20);
    while client.is_handshaking() || server.is_handshaking() {
        hand_over(&mut client, &mut server, &mut wire)?;
        hand_over(&mut server, &mut client, &mut wire)?;
    }
    // As over a socket: the sender encrypts until its buffer of records is full (rustls's
    // default limit, 64 KiB), the receiver takes those records, and so on.
    let block = vec![0x5a_u8; 1 << 20];
    let mut plaintext = vec![0u8; 1 << 20];
    let (mut sending, mut receiving, mut received) = (Duration::ZERO, Duration::ZERO, 0u64);
    for _ in 0..mib {
        let mut written = 0;
        while written < block.len() {
            let began = thread_cpu()?;
            written += client.writer().write(&block[written..])?;
            wire.clear();
            while client.wants_write() {
                client.write_tls(&mut wire)?;
            }
            sending += thread_cpu()? - began;

            let began = thread_cpu()?;
            let mut records = &wire[..];
            while !records.is_empty() {
                server.read_tls(&mut records)?;
                server.process_new_packets()?;
                loop {
                    match server.reader().read(&mut plaintext) {
                        Ok(0) => break,
                        Ok(n) => received += n as u64,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            receiving += thread_cpu()? - began;
        }
    }
    let cipher = server
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    if received != mib << 20 {
        return Err(format!("the server read {received} bytes of {}", mib << 20).into());
    }
    let rate = |d: Duration| received as f64 / d.as_secs_f64() / 1e6;
    println!(
        "cipher {cipher} bytes {received} sender_mb_per_cpu_s {:.1} receiver_mb_per_cpu_s {:.1}",
        rate(sending),
        rate(receiving),
    );
    Ok(())
}

/// Moves what `from` has to send into `to`, through `wire`.
fn hand_over(
    from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl rustls::SideData>>,
    to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl rustls::SideData>>,
    wire: &mut Vec<u8>,
) -> Result<()> {
    wire.clear();
    while from.wants_write() {
        from.write_tls(wire)?;
    }
    let mut records = &wire[..];
    while !records.is_empty() {
        to.read_tls(&mut records)?;
        to.process_new_packets()?;
    }
    Ok(())
}

fn seal(options: &Options<'_>) -> Result<()> {
    let suite = Suite::parse(options.text("--suite")?)?;
    let seconds = Duration::from_secs_f64(options.number("--seconds")?);
    let key = LessSafeKey::new(UnboundKey::new(suite.aead(), &[7u8; 32])?);
    let mut block = vec![0u8; 16 * 1024];
    let mut sealed = 0u64;
    let (began, cpu) = (Instant::now(), thread_cpu()?);
    while began.elapsed() < seconds {
        for _ in 0..64 {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&sealed.to_be_bytes());
            let tag = key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut block,
            )?;
            std::hint::black_box(&tag);
            sealed += 1;
        }
    }
    let (elapsed, cpu) = (began.elapsed(), thread_cpu()? - cpu);
    let bytes = sealed as f64 * block.len() as f64;
    println!(
        "bytes {bytes} seconds {:.3} mb_per_s {:.1} mb_per_cpu_s {:.1}",
        elapsed.as_secs_f64(),
        bytes / elapsed.as_secs_f64() / 1e6,
        bytes / cpu.as_secs_f64() / 1e6,
    );
    Ok(())
}

/// TLS 1.3 only, the factory cipher string (which TLS 1.3 does not use).
fn policy() -> Result<ServiceTls> {
    Ok(ServiceTls {
        protocols: ProtocolRange::only(TlsVersion::Tls1_3),
        ciphers: CipherString::new(TlsSettings::DEFAULT_CIPHERS)?,
    })
}

/// A TLS 1.3 client offering `suites` and X25519 only (the group both servers choose anyway,
/// fixed so that neither is offered a costlier one), without resumption, and without checking
/// the server's certificate or signature: verifying is the client's cost, and one client core
/// must keep one server core busy.
fn client_config(suites: &[SupportedCipherSuite]) -> Result<ClientConfig> {
    let provider = Arc::new(CryptoProvider {
        cipher_suites: suites.to_vec(),
        kx_groups: vec![kx_group::X25519],
        ..default_provider()
    });
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// Accepts any certificate and any handshake signature: a load generator, never a client.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS 1.3 suite a bulk measurement is forced to.
#[derive(Debug, Clone, Copy)]
enum Suite {
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Suite {
    fn parse(name: &str) -> Result<Self> {
        match name {
            "aes256" => Ok(Self::Aes256Gcm),
            "chacha" => Ok(Self::Chacha20Poly1305),
            other => Err(format!("unknown suite '{other}': aes256 or chacha").into()),
        }
    }

    fn rustls(self) -> SupportedCipherSuite {
        match self {
            Self::Aes256Gcm => cipher_suite::TLS13_AES_256_GCM_SHA384,
            Self::Chacha20Poly1305 => cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        }
    }

    /// The name [`postern_tls::Negotiated`] gives it.
    fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "TLS_AES_256_GCM_SHA384",
            Self::Chacha20Poly1305 => "TLS_CHACHA20_POLY1305_SHA256",
        }
    }

    fn aead(self) -> &'static aws_lc_rs::aead::Algorithm {
        match self {
            Self::Aes256Gcm => &AES_256_GCM,
            Self::Chacha20Poly1305 => &CHACHA20_POLY1305,
        }
    }
}

/// The command-line options after the subcommand, as `--name value` pairs.
struct Options<'a>(&'a [String]);

impl Options<'_> {
    fn text(&self, name: &str) -> Result<&str> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
            .ok_or_else(|| format!("{name} is missing\n{USAGE}").into())
    }

    fn number<T>(&self, name: &str) -> Result<T>
    where
        T: std::str::FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        Ok(self.text(name)?.parse()?)
    }
}

/// A runtime on the calling thread only: one core's worth of work.
fn one_thread() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The CPU time the calling thread has used, user and system, from the scheduler's accounting.
fn thread_cpu() -> Result<Duration> {
    let now = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)?;
    Ok(Duration::from(now))
}
