//! The Classic UI in a real browser: headless Chromium driven through WebDriver against
//! `postern run`, each test on a fresh data directory, written against the UI's DOM contract
//! (the element ids of `crates/web`'s pages). Screenshots of each step go to
//! `{CARGO_TARGET_TMPDIR}/browser/`.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::browser::{Browser, Driver, TLS12_MAX};
use common::{Gateway, POLL, cli};
use fantoccini::Locator;

/// How long the HTTPS service may take to serve again after a commit restarted it.
const RESTART: Duration = Duration::from_secs(15);

/// The fixed TLS v1.3 suites, in the server's order of preference.
const TLS13_SUITES: [&str; 3] = [
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
];

/// What `sslconfig print` shows of GUI HTTPS and Inbound SMTP.
const FACTORY_GUI: &str = "GUI HTTPS method: tlsv1_1tlsv1_2\n";
const TLS13_GUI: &str = "GUI HTTPS method: tlsv1_1tlsv1_2tlsv1_3\n";
const FACTORY_INBOUND: &str = "Inbound SMTP method: tlsv1_1tlsv1_2\n";

/// How the view page lists the factory protocols and those with TLS v1.3 added.
const FACTORY_VIEW: &str = "TLS v1.1, TLS v1.2";
const TLS13_VIEW: &str = "TLS v1.1, TLS v1.2, TLS v1.3";

/// Chromium's error for a server that speaks no TLS version the browser does.
const VERSION_MISMATCH: &str = "ERR_SSL_VERSION_OR_CIPHER_MISMATCH";

/// The four protocol boxes of one service as `(version, checked, enabled)`, newest first.
type Boxes = [(&'static str, bool, bool); 4];

/// TLS v1.1 + v1.2: both ends can be unticked, both neighbours ticked.
const FACTORY_BOXES: Boxes = [
    ("tls13", false, true),
    ("tls12", true, true),
    ("tls11", true, true),
    ("tls10", false, true),
];

/// TLS v1.1 to v1.3: v1.2 is the middle of the range and cannot be unticked.
const TLS13_BOXES: Boxes = [
    ("tls13", true, true),
    ("tls12", true, false),
    ("tls11", true, true),
    ("tls10", false, true),
];

// ---------------------------------------------------------------------------------------------
// Helpers

/// The Classic UI address of `path` on `gateway`.
fn gui(gateway: &Gateway, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", gateway.gui)
}

/// The NGUI address of `path` on `gateway`.
fn ngui(gateway: &Gateway, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", gateway.ngui)
}

/// What `sslconfig print` shows in a new CLI session (the committed configuration).
fn sslconfig(data: &Path) -> String {
    let (ok, out) = cli(data, "sslconfig print\n");
    assert!(ok, "sslconfig print failed:\n{out}");
    out
}

/// Stages `sslconfig gui SELECTION` in a CLI session and commits it.
fn commit_gui_protocols(data: &Path, selection: &str) {
    let (ok, out) = cli(
        data,
        &format!("sslconfig gui {selection}\ncommit GUI HTTPS {selection}\n"),
    );
    assert!(
        ok && out.contains("Changes committed:"),
        "committing sslconfig gui {selection} failed:\n{out}"
    );
}

/// Loads the login page and checks it is one: the first thing each test asks of the UI.
async fn login_page(browser: &Browser, gateway: &Gateway) {
    let url = gui(gateway, "/login");
    if let Err(e) = browser.load(&url).await {
        panic!(
            "the Classic UI did not serve {url}: {e}\n{}",
            browser.describe().await
        );
    }
    assert!(
        browser.try_id("login").await.is_some(),
        "{url} is not the login page (no form#login)\n{}",
        browser.describe().await
    );
}

/// Logs in as `admin` and waits for System Status.
async fn log_in(browser: &mut Browser, gateway: &Gateway) {
    login_page(browser, gateway).await;
    browser.shot("login-page").await;
    browser.fill("username", "admin").await;
    browser.fill("password", &gateway.admin_password()).await;
    browser.click("login-submit").await;
    browser.wait_path("/").await;
    assert!(
        !browser.shown("login-error").await,
        "the admin password was refused\n{}",
        browser.describe().await
    );
    browser.id("nav-ssl").await;
    browser.shot("system-status").await;
}

/// From any page: SSL Configuration through the header's link.
async fn open_ssl_view(browser: &mut Browser) {
    browser.click("nav-ssl").await;
    browser.wait_path("/system/ssl").await;
    browser.id("edit-settings").await;
    let heading = "//*[self::h1 or self::h2 or self::h3][contains(., 'SSL Configuration')]";
    assert!(
        browser.client.find(Locator::XPath(heading)).await.is_ok(),
        "no heading \"SSL Configuration\" on /system/ssl\n{}",
        browser.describe().await
    );
}

/// From the view page: Edit Settings.
async fn open_ssl_edit(browser: &mut Browser) {
    browser.click("edit-settings").await;
    browser.wait_path("/system/ssl/edit").await;
    browser.id("ssl-form").await;
}

/// The protocol boxes of `service` as the browser sees them.
async fn boxes(browser: &Browser, service: &str) -> Vec<(&'static str, bool, bool)> {
    let mut seen = Vec::new();
    for (version, _, _) in FACTORY_BOXES {
        let id = format!("{service}-{version}");
        let element = browser.id(&id).await;
        let checked = element
            .is_selected()
            .await
            .unwrap_or_else(|e| panic!("#{id} checked: {e}"));
        let enabled = element
            .is_enabled()
            .await
            .unwrap_or_else(|e| panic!("#{id} enabled: {e}"));
        seen.push((version, checked, enabled));
    }
    seen
}

/// Waits until the boxes of `service` are as `expected` (the page's script sets them when a
/// box is clicked).
async fn expect_boxes(browser: &Browser, service: &str, expected: Boxes, when: &str) {
    let deadline = Instant::now() + common::TIMEOUT;
    loop {
        let seen = boxes(browser, service).await;
        if seen == expected {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "{when}: the {service} boxes (version, checked, enabled) are\n{seen:?}\n\
                 expected\n{expected:?}\n{}",
                browser.describe().await
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Loads `url` until it loads, within [`RESTART`] (the HTTPS service restarts after a commit
/// of GUI HTTPS protocols).
async fn load_within_restart(browser: &Browser, url: &str) {
    let deadline = Instant::now() + RESTART;
    loop {
        match browser.load(url).await {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => panic!(
                "{url} did not load within {RESTART:?}: {e}\n{}",
                browser.describe().await
            ),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Loads `url` until the load fails with [`VERSION_MISMATCH`], within [`RESTART`]: until
/// then the HTTPS service of the old protocols may still answer, or none while it restarts.
async fn refused_within_restart(browser: &Browser, url: &str) -> String {
    let deadline = Instant::now() + RESTART;
    loop {
        let outcome = browser.load(url).await;
        match &outcome {
            Err(e) if e.contains(VERSION_MISMATCH) => return e.clone(),
            _ if Instant::now() >= deadline => panic!(
                "a browser limited to TLS v1.2 was not refused {url} within {RESTART:?} \
                 (expected {VERSION_MISMATCH}); the last load: {outcome:?}\n{}",
                browser.describe().await
            ),
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

/// The seed article's flow in the Classic UI: SSL Configuration, Edit Settings, tick TLS v1.3
/// for GUI HTTPS (the boxes that would break the range grey out), look at the fixed TLS v1.3
/// suites, submit, commit; the HTTPS service restarts and serves TLS v1.1 to v1.3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_flow_in_the_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let driver = Driver::start("seed-flow");
    let mut browser = driver.browser("seed-flow", &[]).await;

    log_in(&mut browser, &gateway).await;
    open_ssl_view(&mut browser).await;
    assert_eq!(browser.text("view-gui-protocols").await, FACTORY_VIEW);
    assert_eq!(browser.text("view-inbound-protocols").await, FACTORY_VIEW);
    assert_eq!(browser.text("view-outbound-protocols").await, FACTORY_VIEW);
    browser.shot("ssl-view").await;

    open_ssl_edit(&mut browser).await;
    expect_boxes(&browser, "gui", FACTORY_BOXES, "the factory settings").await;
    expect_boxes(&browser, "inbound", FACTORY_BOXES, "the factory settings").await;
    let other = browser.id("other-tls10").await;
    assert_eq!(other.is_selected().await.ok(), Some(false), "other-tls10");
    browser.shot("ssl-edit").await;

    browser.click("gui-tls13").await;
    expect_boxes(&browser, "gui", TLS13_BOXES, "after ticking GUI TLS v1.3").await;
    // The other services are not touched by the GUI's boxes.
    expect_boxes(
        &browser,
        "inbound",
        FACTORY_BOXES,
        "after ticking GUI TLS v1.3",
    )
    .await;
    // A greyed box cannot be unticked.
    browser.click("gui-tls12").await;
    expect_boxes(
        &browser,
        "gui",
        TLS13_BOXES,
        "after clicking greyed TLS v1.2",
    )
    .await;
    browser.shot("gui-tls13-ticked").await;

    browser.click("gui-tls13-help").await;
    let deadline = Instant::now() + common::TIMEOUT;
    while !browser.shown("gui-tls13-ciphers").await {
        assert!(
            Instant::now() < deadline,
            "the ? of GUI TLS v1.3 did not show #gui-tls13-ciphers\n{}",
            browser.describe().await
        );
        tokio::time::sleep(POLL).await;
    }
    let suites = browser.text("gui-tls13-ciphers").await;
    let positions: Vec<Option<usize>> = TLS13_SUITES.iter().map(|s| suites.find(s)).collect();
    assert!(
        positions.iter().all(Option::is_some) && positions.is_sorted(),
        "#gui-tls13-ciphers should list {TLS13_SUITES:?} in that order: {suites:?}"
    );
    browser.shot("gui-tls13-ciphers").await;

    browser.click("ssl-submit").await;
    browser.wait_path("/system/ssl").await;
    assert!(
        !browser.shown("form-error").await,
        "the form was refused\n{}",
        browser.describe().await
    );
    assert!(
        browser.shown("uncommitted").await,
        "no #uncommitted banner after Submit\n{}",
        browser.describe().await
    );
    assert!(
        browser
            .text("uncommitted")
            .await
            .contains("Uncommitted Changes"),
        "{}",
        browser.describe().await
    );
    browser.shot("submitted").await;
    // Submitted is not committed.
    assert!(sslconfig(data).contains(FACTORY_GUI));

    browser.click("commit-changes").await;
    browser.wait_path("/commit").await;
    browser.id("commit-form").await;
    browser.fill("commit-comment", "TLS 1.3 for the GUI").await;
    browser.shot("commit").await;
    // The answer to the commit may be cut short by the restart of the HTTPS service it causes.
    let _ = browser.id("commit-submit").await.click().await;
    if browser.path().await == "/system/ssl" && browser.shown("notice").await {
        let notice = browser.text("notice").await;
        assert!(notice.contains("committed"), "#notice: {notice:?}");
        browser.shot("committed").await;
    }

    load_within_restart(&browser, &gui(&gateway, "/system/ssl")).await;
    if browser.path().await == "/login" {
        // The restart ended the session.
        log_in(&mut browser, &gateway).await;
        browser.open(&gui(&gateway, "/system/ssl")).await;
    }
    browser.wait_path("/system/ssl").await;
    assert_eq!(browser.text("view-gui-protocols").await, TLS13_VIEW);
    assert_eq!(browser.text("view-inbound-protocols").await, FACTORY_VIEW);
    assert!(
        !browser.shown("uncommitted").await,
        "#uncommitted is still shown after the commit\n{}",
        browser.describe().await
    );
    browser.shot("after-restart").await;

    let printed = sslconfig(data);
    assert!(printed.contains(TLS13_GUI), "{printed}");
    assert!(printed.contains(FACTORY_INBOUND), "{printed}");
    let (ok, detail) = cli(data, "commitdetail\n");
    assert!(ok, "{detail}");
    assert!(detail.contains("Comment: TLS 1.3 for the GUI"), "{detail}");
    browser.close().await;
}

/// GUI HTTPS set to TLS v1.3 only (through the CLI): a browser capped at TLS v1.2 is refused on
/// both HTTPS ports while an ordinary one gets the login page; back to v1.1–v1.3, the capped
/// browser gets in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_tls13_is_refused_when_gui_https_is_tls13_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let driver = Driver::start("tls13-only");
    let mut capped = driver.browser("tls13-only-capped", &[TLS12_MAX]).await;
    let mut ordinary = driver.browser("tls13-only-ordinary", &[]).await;

    // The factory settings (TLS v1.1 + v1.2) let the capped browser in.
    login_page(&capped, &gateway).await;
    capped.shot("factory").await;

    commit_gui_protocols(data, "1");
    let printed = sslconfig(data);
    assert!(printed.contains("GUI HTTPS method: tlsv1_3\n"), "{printed}");

    let login = gui(&gateway, "/login");
    let refusal = refused_within_restart(&capped, &login).await;
    capped.shot("gui-refused").await;
    let page = capped.describe().await;
    assert!(page.contains(VERSION_MISMATCH), "{refusal}\n{page}");
    let root = ngui(&gateway, "/");
    refused_within_restart(&capped, &root).await;
    capped.shot("ngui-refused").await;

    load_within_restart(&ordinary, &login).await;
    login_page(&ordinary, &gateway).await;
    ordinary.shot("gui-tls13").await;
    if let Err(e) = ordinary.load(&root).await {
        panic!(
            "an ordinary browser could not load the NGUI {root}: {e}\n{}",
            ordinary.describe().await
        );
    }

    commit_gui_protocols(data, "1-3");
    let printed = sslconfig(data);
    assert!(printed.contains(TLS13_GUI), "{printed}");
    // Until the service has restarted the capped browser may still be refused.
    load_within_restart(&capped, &login).await;
    login_page(&capped, &gateway).await;
    capped.shot("gui-tls11-13").await;
    if let Err(e) = capped.load(&root).await {
        panic!(
            "the capped browser could not load the NGUI {root} with TLS v1.1 to v1.3: {e}\n{}",
            capped.describe().await
        );
    }
    capped.close().await;
    ordinary.close().await;
}

/// Abandon in the commit banner: the submitted change is gone from the session, the view and
/// the edit page show the committed settings, and nothing was committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_banner_abandon_discards_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let driver = Driver::start("abandon");
    let mut browser = driver.browser("abandon", &[]).await;

    log_in(&mut browser, &gateway).await;
    assert!(
        !browser.shown("uncommitted").await,
        "#uncommitted is shown before any change\n{}",
        browser.describe().await
    );
    open_ssl_view(&mut browser).await;
    open_ssl_edit(&mut browser).await;
    browser.click("inbound-tls13").await;
    expect_boxes(
        &browser,
        "inbound",
        TLS13_BOXES,
        "after ticking inbound TLS v1.3",
    )
    .await;
    browser.click("ssl-submit").await;
    browser.wait_path("/system/ssl").await;
    assert!(
        browser.shown("uncommitted").await,
        "no #uncommitted banner after Submit\n{}",
        browser.describe().await
    );
    browser.shot("submitted").await;

    browser.click("abandon-changes").await;
    let deadline = Instant::now() + common::TIMEOUT;
    while browser.shown("uncommitted").await {
        assert!(
            Instant::now() < deadline,
            "#uncommitted is still shown after Abandon\n{}",
            browser.describe().await
        );
        tokio::time::sleep(POLL).await;
    }
    browser.shot("abandoned").await;

    browser.open(&gui(&gateway, "/system/ssl")).await;
    assert!(!browser.shown("uncommitted").await);
    assert_eq!(browser.text("view-inbound-protocols").await, FACTORY_VIEW);
    assert_eq!(browser.text("view-gui-protocols").await, FACTORY_VIEW);
    open_ssl_edit(&mut browser).await;
    expect_boxes(&browser, "inbound", FACTORY_BOXES, "after Abandon").await;
    browser.shot("edit-after-abandon").await;

    let printed = sslconfig(data);
    assert!(printed.contains(FACTORY_INBOUND), "{printed}");
    // The last commit is still the factory one.
    let (ok, detail) = cli(data, "commitdetail\n");
    assert!(ok, "{detail}");
    assert!(detail.contains("Generation 1: "), "{detail}");
    assert!(!detail.contains("inbound_smtp.protocols"), "{detail}");
    browser.close().await;
}

/// A wrong password stays on the login page with `#login-error` and opens no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_shows_the_login_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = Gateway::start(dir.path(), &[]);
    let driver = Driver::start("wrong-password");
    let mut browser = driver.browser("wrong-password", &[]).await;

    login_page(&browser, &gateway).await;
    browser.fill("username", "admin").await;
    browser
        .fill("password", &format!("{}x", gateway.admin_password()))
        .await;
    browser.click("login-submit").await;
    browser.id("login-error").await;
    browser.shot("refused").await;
    assert!(
        browser.shown("login-error").await,
        "{}",
        browser.describe().await
    );
    assert!(
        browser.try_id("nav-ssl").await.is_none(),
        "{}",
        browser.describe().await
    );
    // No session: the view page sends the browser back to the login page.
    browser.open(&gui(&gateway, "/system/ssl")).await;
    browser.wait_path("/login").await;
    browser.close().await;
}

/// The Verify button next to a cipher string lists the TLS v1.2 suites the string selects (the
/// seed's VERIFY), here ECDHE with AES-GCM only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_lists_the_suites_a_cipher_string_selects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = Gateway::start(dir.path(), &[]);
    let driver = Driver::start("verify");
    let mut browser = driver.browser("verify", &[]).await;

    log_in(&mut browser, &gateway).await;
    open_ssl_view(&mut browser).await;
    open_ssl_edit(&mut browser).await;
    browser.fill("inbound-ciphers", "ECDHE+AESGCM").await;
    browser.click("inbound-verify").await;
    let deadline = Instant::now() + common::TIMEOUT;
    let result = loop {
        let text = browser.text("inbound-verify-result").await;
        if text.contains("ECDHE-RSA-AES128-GCM-SHA256") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "#inbound-verify-result does not list ECDHE-RSA-AES128-GCM-SHA256: {text:?}\n{}",
            browser.describe().await
        );
        tokio::time::sleep(POLL).await;
    };
    browser.shot("verified").await;
    let names: Vec<&str> = result
        .split(|c: char| c.is_whitespace() || c == ',')
        .collect();
    assert!(names.contains(&"ECDHE-RSA-AES256-GCM-SHA384"), "{result}");
    for unselected in [
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-SHA256",
        "AES128-GCM-SHA256",
    ] {
        assert!(
            !names.contains(&unselected),
            "{unselected} is not selected by ECDHE+AESGCM: {result}"
        );
    }
    browser.close().await;
}

/// The NGUI on its own port: log in through its form (the REST API underneath), see the
/// dashboard with the mail-flow counters, the TLS share and the SSL settings, search tracking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ngui_dashboard_works_over_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = Gateway::start(dir.path(), &[]);
    let driver = Driver::start("ngui");
    let mut browser = driver.browser("ngui", &[]).await;

    browser.open(&ngui(&gateway, "/")).await;
    browser.shot("login").await;
    assert!(browser.shown("ngui-login").await);
    browser.fill("ngui-username", "admin").await;
    browser.fill("ngui-password", "not-the-password").await;
    browser.click("ngui-login-submit").await;
    let deadline = Instant::now() + common::TIMEOUT;
    while browser.text("ngui-login-error").await.is_empty() {
        assert!(Instant::now() < deadline, "{}", browser.describe().await);
        tokio::time::sleep(POLL).await;
    }
    assert!(
        browser.text("ngui-login-error").await.contains("incorrect"),
        "{}",
        browser.describe().await
    );

    browser
        .fill("ngui-password", &gateway.admin_password())
        .await;
    browser.click("ngui-login-submit").await;
    let deadline = Instant::now() + common::TIMEOUT;
    while !browser.shown("ngui-dashboard").await {
        assert!(Instant::now() < deadline, "{}", browser.describe().await);
        tokio::time::sleep(POLL).await;
    }
    browser.shot("dashboard").await;
    let ssl = browser.text("ngui-ssl").await;
    assert!(ssl.contains("tlsv1_1tlsv1_2"), "{ssl}");
    assert!(
        browser.text("ngui-tls13").await.contains(TLS13_SUITES[0]),
        "{}",
        browser.describe().await
    );
    assert!(browser.text("ngui-counters").await.contains("Commits"));
    assert!(
        browser
            .text("ngui-tls-inbound")
            .await
            .contains("Connections")
    );

    browser
        .fill("ngui-tracking-sender", "nobody@nowhere.example")
        .await;
    browser.click("ngui-tracking-submit").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(browser.text("ngui-tracking-error").await.is_empty());
    browser.shot("tracking").await;
    browser.close().await;
}
