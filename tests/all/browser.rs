//! The console in a real headless Chromium (Debian's `chromium` and `chromium-driver`, which
//! `.ci/run` installs), driven over WebDriver: a station worker, a bureau worker on a desktop
//! and a volunteer on a 360-px phone, through the pages only. Screenshots of the main pages are
//! written to `target/console-screenshots/`.
//!
//! Waiting is by condition (the page shows what the step expects), never by a fixed sleep, so
//! a slow machine only makes the test slower.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::account;
use crate::harness::*;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A chromedriver with its port.
async fn chromedriver() -> (Driver, String) {
    let path = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromedriver is not installed: apt-get install chromium chromium-driver (.ci/run does)");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{url}/status")).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["value"]["ready"] == true
        {
            return (driver, url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

/// One browser window (its own profile: its own cookies).
struct Browser {
    http: reqwest::Client,
    session: String,
    base: String,
    name: &'static str,
    /// The browser's profile folder, removed with the browser.
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open(
        driver: &str,
        name: &'static str,
        width: u32,
        height: u32,
        mobile: bool,
    ) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--lang=zh-CN".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        if mobile {
            args.push("--user-agent=Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 MicroMessenger/8.0".into());
        }
        let mut chrome = json!({
            "binary": "/usr/bin/chromium",
            "args": args,
        });
        if mobile {
            chrome["mobileEmulation"] = json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "touch": true}});
        }
        let http = reqwest::Client::new();
        let r: Value = http
            .post(format!("{driver}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": chrome,
                "goog:loggingPrefs": {"browser": "ALL"},
            }}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_owned();
        Browser {
            http,
            session: format!("{driver}/session/{session}"),
            base: String::new(),
            name,
            _profile: profile,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("{}: {path}: {}", self.name, v["value"]);
        }
        v["value"].clone()
    }

    async fn goto(&self, path: &str) {
        self.cmd(
            reqwest::Method::POST,
            "/url",
            json!({"url": format!("{}{path}", self.base)}),
        )
        .await;
    }

    async fn script(&self, js: &str, args: Value) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": js, "args": args}),
        )
        .await
    }

    async fn text(&self) -> String {
        self.script(
            "return document.body ? document.body.innerText : ''",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn path(&self) -> String {
        self.script("return location.pathname + location.search", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the page's text contains `want` (the page loads, a form's answer arrives).
    async fn wait_text(&self, want: &str) -> String {
        let mut last = String::new();
        for _ in 0..600 {
            last = self.text().await;
            if last.contains(want) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{}: the page never showed {want:?}; it shows:\n{last}",
            self.name
        );
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{}: {css}: {v}", self.name))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            json!({}),
        )
        .await;
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            json!({}),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            json!({"text": text}),
        )
        .await;
    }

    /// Sets a field's value directly (date and time inputs, whose typing is locale-bound).
    async fn set(&self, css: &str, value: &str) {
        self.script(
            "document.querySelector(arguments[0]).value = arguments[1]",
            json!([css, value]),
        )
        .await;
    }

    async fn screenshot(&self, file: &str) {
        use base64::Engine;
        let png = self
            .cmd(reqwest::Method::GET, "/screenshot", json!({}))
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), bytes).unwrap();
    }

    /// The page is no wider than the window (nothing to scroll sideways at 360 px).
    async fn fits(&self) -> bool {
        self.script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            json!([]),
        )
        .await
            == json!(true)
    }

    /// The browser's log since the last call, and of it the entries that are JavaScript errors
    /// or policy violations (not the network's 4xx answers the test asks for on purpose).
    async fn logs(&self) -> (Vec<Value>, Vec<Value>) {
        let logs = self
            .cmd(reqwest::Method::POST, "/se/log", json!({"type": "browser"}))
            .await;
        let all = logs.as_array().cloned().unwrap_or_default();
        let errors = all
            .iter()
            .filter(|e| {
                e["level"] == "SEVERE"
                    && !(e["source"] == "network"
                        || e["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("Failed to load resource")))
            })
            .cloned()
            .collect();
        (all, errors)
    }

    async fn close(&self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn station_bureau_and_volunteer_work_through_the_console_in_a_real_browser() {
    let d = Daemon::start().await;
    // A Saturday morning, when the fixture's volunteers are free.
    d.clock.set(at("2026-12-05T09:00:00+08:00"));
    let w = world(&d).await;
    let mut v = volunteer(w.stations[0], 801);
    v["home"] = json!({"lat": 35.541, "lon": 106.661});
    v["monthly_capacity"] = json!(20);
    v["name"] = json!("赵志愿");
    let vol = d.created("/v1/volunteers", v).await["id"].as_u64().unwrap();
    let station_pw = account(&d, "zhang.station", &format!("station:{}", w.stations[0])).await;
    let bureau_pw = account(&d, "li.bureau", "bureau:620802000000").await;
    let (_driver, driver) = chromedriver().await;

    // ------------------------------------------------------------ the bureau: plugins
    let mut desk = Browser::open(&driver, "desktop", 1280, 900, false).await;
    desk.base = d.url.clone();
    desk.goto("/").await;
    desk.wait_text("登录").await;
    desk.fill("input[name=name]", "li.bureau").await;
    desk.fill("input[name=password]", &bureau_pw).await;
    desk.click("form[action='/login'] button").await;
    let text = desk.wait_text("特困老人月走访率").await;
    assert!(text.contains("0.0%") || text.contains("—"), "{text}");
    desk.screenshot("bureau-coverage-before.png").await;
    // Deploy a plugin from a file, then a new version, then roll back.
    let dir = tempfile::tempdir().unwrap();
    for (name, file) in [("steady", "steady.wasm"), ("steady-v2", "steady-v2.wasm")] {
        let path = dir.path().join(file);
        std::fs::write(&path, crate::wasm::fixture(name)).unwrap();
        desk.goto("/bureau/plugins").await;
        desk.wait_text("部署新插件").await;
        let input = desk.find("input[type=file]").await;
        desk.cmd(
            reqwest::Method::POST,
            &format!("/element/{input}/value"),
            json!({"text": path.to_str().unwrap()}),
        )
        .await;
        desk.click("form[action='/bureau/plugins'] button").await;
        desk.wait_text("已部署 steady").await;
    }
    let status = d.get("/v1/plugins/steady", &d.admin).await;
    assert_ne!(status.body["active_version"], "1.0.0", "{:?}", status.body);
    desk.screenshot("bureau-plugins.png").await;
    desk.click("form[action='/bureau/plugins/steady/rollback'] button")
        .await;
    for _ in 0..600 {
        if d.get("/v1/plugins/steady", &d.admin).await.body["active_version"] == "1.0.0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        d.get("/v1/plugins/steady", &d.admin).await.body["active_version"],
        "1.0.0"
    );
    desk.wait_text("回滚到此版本").await;

    // A duty of the plugin plans a visit, offered to the volunteer (as the scheduler would).
    let bureau = d.token("bureau:620802000000").await;
    let r = d
        .post(
            "/v1/duties",
            &bureau,
            json!({"name": "visits", "plugin": "steady", "action": "visit", "cron": "0 9 1 * *",
                   "selector": {"region": "620802001001"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let duty = r.body["id"].as_u64().unwrap();
    d.post(&format!("/v1/duties/{duty}/trigger"), &bureau, json!({}))
        .await;
    tick(&d).await;
    let visit = d
        .get(&format!("/v1/tasks?duty={duty}"), &d.admin)
        .await
        .body["items"][0]
        .clone();
    assert_eq!(visit["status"], "offered", "{visit:?}");
    let visit = visit["id"].as_u64().unwrap();
    desk.goto("/bureau/duties").await;
    desk.wait_text("visits").await;
    desk.screenshot("bureau-duties.png").await;

    // ------------------------------------------------------------ the station
    desk.click("form[action='/logout'] button").await;
    desk.wait_text("用户名").await;
    desk.fill("input[name=name]", "zhang.station").await;
    desk.fill("input[name=password]", &station_pw).await;
    desk.click("form[action='/login'] button").await;
    desk.wait_text("各村（社区）本月任务").await;
    desk.screenshot("station-dashboard.png").await;
    desk.goto("/station/tasks").await;
    let text = desk.wait_text("已派单").await;
    assert!(
        text.contains(&visit.to_string()),
        "the planned visit is listed: {text}"
    );
    // A resident phones: the worker finds her and records the request; it is offered at once.
    desk.goto("/station/persons?q=%E5%BC%A0").await;
    desk.wait_text("张桂兰").await;
    desk.click(&format!(
        "a[href='/station/requests/new?person={}']",
        w.persons[0]
    ))
    .await;
    desk.wait_text("诉求（标题）").await;
    desk.fill("input[name=title]", "老人来电：需要代买降压药")
        .await;
    desk.script(
        "document.querySelector('select[name=priority]').value = 'urgent'",
        json!([]),
    )
    .await;
    desk.click("form[action='/station/requests'] button[type=submit]")
        .await;
    let text = desk.wait_text("老人来电：需要代买降压药").await;
    assert!(
        text.contains("赵志愿"),
        "offered to the volunteer nearby: {text}"
    );
    assert!(text.contains("紧急"), "{text}");
    let request: u64 = desk
        .path()
        .await
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    desk.screenshot("station-request-offered.png").await;
    // Another station's person is not reached by editing the URL.
    desk.goto(&format!("/station/persons/{}", w.persons[1]))
        .await;
    desk.wait_text("找不到").await;
    // A form posted without its token is refused, and nothing is recorded.
    desk.goto("/station/requests/new").await;
    desk.wait_text("诉求（标题）").await;
    desk.fill("input[name=person]", &w.persons[0].to_string())
        .await;
    desk.fill("input[name=title]", "伪造的请求").await;
    desk.script(
        "document.querySelector('form[action=\"/station/requests\"] input[name=_csrf]').remove()",
        json!([]),
    )
    .await;
    desk.click("form[action='/station/requests'] button[type=submit]")
        .await;
    desk.wait_text("表单已失效").await;
    let tasks = d.get("/v1/tasks?limit=100", &d.admin).await;
    assert!(
        !tasks.body.to_string().contains("伪造的请求"),
        "the forged request was not recorded"
    );
    // The volunteer's login QR code, as the station prints it.
    desk.goto(&format!("/station/volunteers/{vol}")).await;
    desk.wait_text("生成登录二维码").await;
    desk.click(&format!(
        "form[action='/station/volunteers/{vol}/login-link'] button"
    ))
    .await;
    let text = desk.wait_text("只能使用一次").await;
    let code = text
        .split("/login/v/")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect::<String>();
    assert_eq!(code.len(), 40, "{text}");
    desk.screenshot("station-volunteer-qr.png").await;

    // ------------------------------------------------------------ the volunteer, on a phone
    let mut phone = Browser::open(&driver, "phone", 360, 740, true).await;
    phone.base = d.url.clone();
    phone.goto(&format!("/login/v/{code}")).await;
    phone.wait_text("在本机登录").await;
    phone.click("form button").await;
    let text = phone.wait_text("新派单").await;
    assert!(text.contains("老人来电：需要代买降压药"), "{text}");
    assert!(phone.fits().await, "the phone page fits 360 px");
    phone.screenshot("volunteer-home.png").await;
    // The page is small: what a phone downloads for it, stylesheet and script included.
    let weight = phone
        .script(
            "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).reduce((n, e) => n + (e.transferSize || e.encodedBodySize || 0), 0)",
            json!([]),
        )
        .await;
    assert!(
        weight.as_f64().unwrap() < 100.0 * 1024.0,
        "page weight {weight}"
    );
    // Accept the planned visit, check in, check out two minutes later.
    phone.goto(&format!("/v/tasks/{visit}")).await;
    phone.wait_text("接单").await;
    assert!(phone.text().await.contains("张桂兰"));
    phone
        .click(&format!("form[action='/v/tasks/{visit}/accept'] button"))
        .await;
    phone.wait_text("到达签到").await;
    phone.screenshot("volunteer-task.png").await;
    d.clock.set(at("2026-12-05T09:30:00+08:00"));
    phone
        .click(&format!("form[action='/v/tasks/{visit}/check-in'] button"))
        .await;
    phone.wait_text("离开签退").await;
    d.clock.advance(chrono::Duration::minutes(2));
    phone
        .click(&format!("form[action='/v/tasks/{visit}/check-out'] button"))
        .await;
    phone.wait_text("提交走访记录").await;
    assert!(phone.fits().await, "the report form fits 360 px");
    phone.screenshot("volunteer-report-form.png").await;
    // The plugin rejects a two-minute visit; the form comes back with the reason.
    phone.click("input[name='a.ok'][value=yes]").await;
    phone
        .click("form[action$='/report'] button[type=submit]")
        .await;
    let text = phone.wait_text("记录被退回").await;
    assert!(text.contains("under 5 minutes"), "{text}");
    phone.screenshot("volunteer-report-rejected.png").await;
    // The volunteer forgot to check in on arrival: the arrival time is corrected, and the
    // report is accepted.
    phone
        .set("input[name=visit_start]", "2026-12-05T09:00")
        .await;
    phone
        .click("form[action$='/report'] button[type=submit]")
        .await;
    phone.wait_text("记录已通过").await;
    let t = d.get(&format!("/v1/tasks/{visit}"), &d.admin).await;
    assert_eq!(t.body["status"], "done", "{:?}", t.body);
    // Hours, stars and a certificate whose QR code verifies.
    phone.goto("/v/me").await;
    phone.wait_text("小时").await;
    phone.click("form[action='/v/certificates'] button").await;
    let text = phone.wait_text("/verify/").await;
    let verify = format!("/verify/{}", verify_code(&text));
    assert!(phone.fits().await, "the certificate reads on a phone too");
    phone.screenshot("volunteer-certificate.png").await;
    phone.goto(&verify).await;
    phone.wait_text("赵志愿").await;

    // ------------------------------------------------------------ the results, as staff see them
    desk.goto("/station").await;
    let text = desk.wait_text("各村（社区）本月任务").await;
    assert!(text.contains("新民路社区"), "{text}");
    let row = desk
        .script(
            "return [...document.querySelectorAll('table.dash tbody tr')].map(r => r.innerText).find(t => t.includes('新民路社区'))",
            json!([]),
        )
        .await;
    let cells: Vec<String> = row
        .as_str()
        .unwrap()
        .split('\t')
        .map(|c| c.trim().to_owned())
        .collect();
    assert_eq!(cells[2], "1", "one visit done this month: {cells:?}");
    desk.click("form[action='/logout'] button").await;
    desk.wait_text("用户名").await;
    desk.fill("input[name=name]", "li.bureau").await;
    desk.fill("input[name=password]", &bureau_pw).await;
    desk.click("form[action='/login'] button").await;
    let text = desk.wait_text("特困老人月走访率").await;
    assert!(
        text.contains("50.0%"),
        "one of the county's two elders visited: {text}"
    );
    desk.screenshot("bureau-coverage-after.png").await;
    // The English switch.
    desk.click("a.lang").await;
    desk.wait_text("Elders visited this month").await;
    assert!(request > visit);

    // The browser's log is read (the refusals above are in it, as network entries), and no
    // page logged a JavaScript error or a Content-Security-Policy violation.
    for b in [&desk, &phone] {
        let (all, errors) = b.logs().await;
        assert!(
            errors.is_empty(),
            "{}: JavaScript errors: {errors:?}",
            b.name
        );
        if b.name == "desktop" {
            assert!(
                all.iter()
                    .any(|e| e["message"].as_str().is_some_and(|m| m.contains("403"))),
                "the forged form's refusal is in the log: {all:?}"
            );
        }
    }
    desk.close().await;
    phone.close().await;
}

/// The certificate code in a certificate page's text (`…/verify/CODE`).
fn verify_code(text: &str) -> String {
    text.split("/verify/")
        .nth(1)
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}
