//! A real browser for the web UI tests: Debian's headless Chromium driven through WebDriver
//! (chromedriver, plain HTTP on loopback) with `fantoccini`.
//!
//! What the probe of Chromium 156 (bookworm) established, and this module relies on:
//! - chromedriver listens as soon as its port accepts connections (about 20 ms); a session
//!   (one Chromium) takes about 0.6 s to start.
//! - As root Chromium needs `--no-sandbox`, or the session is not created ("Chrome instance
//!   exited"). `--disable-dev-shm-usage` keeps it off a small /dev/shm.
//! - The gateway's certificate is self-signed: without `acceptInsecureCerts` a page load
//!   *succeeds* with Chromium's "Privacy error" interstitial (NET::ERR_CERT_AUTHORITY_INVALID).
//! - `--ssl-version-max=tls1.2` really caps the browser: against `openssl s_server -tls1_3` the
//!   server logs "unsupported protocol" and the load fails, without the flag it loads.
//! - A load that fails on connecting or on the TLS handshake makes `goto` return a WebDriver
//!   "unknown error" whose message carries Chromium's code (`unknown error:
//!   net::ERR_SSL_VERSION_OR_CIPHER_MISMATCH`, `net::ERR_CONNECTION_REFUSED`); the URL stays the
//!   one asked for (no `chrome-error://`), and the page shown is Chromium's error page, whose
//!   text has the code too, as has its script data (`loadTimeDataRaw.errorCode`).
//! - A server that closes the connection without answering (`ERR_EMPTY_RESPONSE`) makes `goto`
//!   return Ok with that error page shown: only the page tells ([`Browser::error_page`]).
//! - A click on a disabled checkbox succeeds and changes nothing.
//! - Chromium outlives a killed chromedriver for a moment: chromedriver runs in a process group
//!   of its own and the whole group is killed.

use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;
use tempfile::TempDir;

use super::{POLL, TIMEOUT, free_port};

/// Debian's Chromium and its WebDriver (packages `chromium`, `chromium-driver`).
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The flags every browser of the tests gets: headless, as root, self-signed certificates are
/// accepted through the `acceptInsecureCerts` capability.
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
];

/// The flag that keeps a browser at TLS v1.2 and below.
pub(crate) const TLS12_MAX: &str = "--ssl-version-max=tls1.2";

/// Where screenshots and chromedriver logs go: `{CARGO_TARGET_TMPDIR}/browser`.
pub(crate) fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).expect("creating the browser artifacts directory");
    dir
}

/// A chromedriver on a free loopback port, in a process group of its own; the group (it and
/// the Chromiums it started) is killed when this is dropped.
pub(crate) struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
    /// Chromium's profiles (chromedriver makes them under `TMPDIR`); removed last.
    _tmp: TempDir,
}

impl Driver {
    /// Starts chromedriver for the test `test` and waits until it accepts connections. Panics
    /// with what to install when Chromium or chromedriver is missing: CI installs them
    /// (`cargo xtask ci`), so a missing browser is a failure, not a skip.
    pub(crate) fn start(test: &str) -> Self {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "the browser tests need {path} (Debian package {package}): \
                 apt-get install chromium chromium-driver, or run `cargo xtask ci`, which does"
            );
        }
        let tmp = tempfile::tempdir().expect("tempdir for Chromium profiles");
        let port = free_port();
        let log = artifacts().join(format!("{test}-chromedriver.log"));
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .env("TMPDIR", tmp.path())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let mut driver = Self {
            child,
            port,
            log,
            _tmp: tmp,
        };
        let deadline = Instant::now() + TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = driver.child.try_wait().expect("try_wait") {
                panic!(
                    "chromedriver exited ({status}) before it listened; see {}",
                    driver.log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on 127.0.0.1:{port} within {TIMEOUT:?}; see {}",
                driver.log.display()
            );
            std::thread::sleep(POLL);
        }
        driver
    }

    /// A new headless Chromium with `flags` beyond [`FLAGS`] (e.g. [`TLS12_MAX`]); its
    /// screenshots are named after `name`.
    pub(crate) async fn browser(&self, name: &str, flags: &[&str]) -> Browser {
        let args: Vec<&str> = FLAGS.iter().chain(flags).copied().collect();
        let capabilities = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver did not start Chromium ({flags:?}): {e}; see {}",
                    self.log.display()
                )
            });
        Browser {
            client,
            name: name.to_owned(),
            shots: 0,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
        // Chromium's processes go a moment later; their profiles are removed after that.
        let deadline = Instant::now() + Duration::from_secs(5);
        while killpg(group, None).is_ok() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
    }
}

/// One Chromium session.
pub(crate) struct Browser {
    pub(crate) client: Client,
    name: String,
    shots: usize,
}

impl Browser {
    /// Loads `url`; Chromium's error (`net::ERR_...`) when the load failed, whether `goto`
    /// said so or only Chromium's error page does.
    pub(crate) async fn load(&self, url: &str) -> Result<(), String> {
        self.client.goto(url).await.map_err(|e| match e {
            CmdError::Standard(wd) => wd.message.to_string(),
            other => other.to_string(),
        })?;
        match self.error_page().await {
            Some(code) => Err(format!("{code} (Chromium's error page)")),
            None => Ok(()),
        }
    }

    /// The error code Chromium's error page shows (`net::ERR_EMPTY_RESPONSE`), if the page
    /// shown is one: its script data carries the code.
    pub(crate) async fn error_page(&self) -> Option<String> {
        let script = "return (typeof loadTimeDataRaw === 'object' && loadTimeDataRaw \
                      && loadTimeDataRaw.errorCode) || null;";
        let code = self.client.execute(script, Vec::new()).await.ok()?;
        let code = code.as_str()?;
        Some(if code.starts_with("net::") {
            code.to_owned()
        } else {
            format!("net::{code}")
        })
    }

    /// Loads `url`, panicking with what was shown when the load failed.
    pub(crate) async fn open(&self, url: &str) {
        if let Err(e) = self.load(url).await {
            panic!(
                "{}: loading {url} failed: {e}\n{}",
                self.name,
                self.describe().await
            );
        }
    }

    /// The page as a failure message shows it: URL, title and the start of its text; a
    /// screenshot of it is saved as `<name>-shown.png`.
    pub(crate) async fn describe(&self) -> String {
        let mut out = String::new();
        let shot = artifacts().join(format!("{}-shown.png", self.name));
        let shot = match self.client.screenshot().await {
            Ok(png) => match std::fs::write(&shot, png) {
                Ok(()) => shot.display().to_string(),
                Err(e) => format!("(not saved: {e})"),
            },
            Err(e) => format!("(not taken: {e})"),
        };
        let url = self.client.current_url().await.map(|u| u.to_string());
        let title = self.client.title().await;
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        };
        let text: String = text.chars().take(1500).collect();
        let _ = write!(
            out,
            "--- page shown ---\nURL: {}\ntitle: {}\nscreenshot: {shot}\ntext:\n{text}\n\
             ------------------",
            url.unwrap_or_else(|e| format!("({e})")),
            title.unwrap_or_else(|e| format!("({e})"))
        );
        out
    }

    /// The path of the page shown (`/system/ssl`).
    pub(crate) async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    }

    /// Waits until the page shown is `path`.
    pub(crate) async fn wait_path(&self, path: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while self.path().await != path {
            if Instant::now() >= deadline {
                panic!(
                    "{}: the browser did not reach {path} within {TIMEOUT:?}\n{}",
                    self.name,
                    self.describe().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The element with id `id` if the page has it now.
    pub(crate) async fn try_id(&self, id: &str) -> Option<Element> {
        self.client.find(Locator::Id(id)).await.ok()
    }

    /// The element with id `id`, waited for; panics with the page shown when it never comes.
    pub(crate) async fn id(&self, id: &str) -> Element {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(element) = self.try_id(id).await {
                return element;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: no element #{id} within {TIMEOUT:?}\n{}",
                    self.name,
                    self.describe().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The visible text of `#id`.
    pub(crate) async fn text(&self, id: &str) -> String {
        self.id(id)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of #{id}: {e}"))
    }

    /// Clicks `#id`.
    pub(crate) async fn click(&self, id: &str) {
        let element = self.id(id).await;
        if let Err(e) = element.click().await {
            panic!(
                "{}: clicking #{id} failed: {e}\n{}",
                self.name,
                self.describe().await
            );
        }
    }

    /// Replaces the value of the input `#id` with `text`, typed.
    pub(crate) async fn fill(&self, id: &str, text: &str) {
        let element = self.id(id).await;
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clearing #{id}: {e}"));
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into #{id}: {e}"));
    }

    /// Whether `#id` is on the page and shown.
    pub(crate) async fn shown(&self, id: &str) -> bool {
        match self.try_id(id).await {
            Some(element) => element.is_displayed().await.unwrap_or(false),
            None => false,
        }
    }

    /// Saves a screenshot as `{CARGO_TARGET_TMPDIR}/browser/<name>-<nn>-<step>.png`; a
    /// screenshot that cannot be taken is reported, not fatal.
    pub(crate) async fn shot(&mut self, step: &str) {
        self.shots += 1;
        let path = artifacts().join(format!("{}-{:02}-{step}.png", self.name, self.shots));
        match self.client.screenshot().await {
            Ok(png) => std::fs::write(&path, png)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display())),
            Err(e) => eprintln!("{}: no screenshot {step}: {e}", self.name),
        }
    }

    /// Ends the session (Chromium quits and its profile is removed).
    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
    }
}
