//! `TestApp`: a running server on a loopback port, its own database and data directory, and
//! a cookie-keeping client with typed helpers.

use std::net::TcpListener;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::r2d2::ManageConnection;
use reqwest::redirect::Policy;
use scraper::{Html, Selector};
use toxtemp::config::{Config, DatabaseUrl};
use toxtemp::db::models::Person;
use toxtemp::db::models::person::PersonSpec;
use toxtemp::db::{self, DbConn, PooledConn};
use toxtemp::web::AppState;

pub const PASSWORD: &str = "correct horse battery";

/// A database for one test: a SQLite file in a temp dir, or a fresh PostgreSQL schema.
pub struct TestDb {
    pub url: DatabaseUrl,
    pg_cleanup: Option<(String, String)>,
}

impl TestDb {
    pub fn new(dir: &std::path::Path) -> Self {
        match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(base) => {
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let mut admin = diesel::PgConnection::establish(&base).expect("TEST_DATABASE_URL reachable");
                admin.batch_execute(&format!("CREATE SCHEMA {schema}")).expect("create schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
                Self { url: DatabaseUrl::Postgres(url), pg_cleanup: Some((base, schema)) }
            }
            None => Self { url: DatabaseUrl::Sqlite(dir.join("test.sqlite3")), pg_cleanup: None },
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = &self.pg_cleanup
            && let Ok(mut conn) = diesel::PgConnection::establish(base)
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub client: reqwest::Client,
    /// Keeps the embedded S3 server running as long as the app.
    _s3: Option<crate::s3::TestS3>,
    _dir: tempfile::TempDir,
    _db: TestDb,
}

impl TestApp {
    /// A migrated database with the ToxTemp v1 questions and a running server.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        Self::build(adjust, None, false).await
    }

    /// Documents go to a real S3 protocol (embedded s3s-fs, or Garage in CI).
    pub async fn spawn_with_s3() -> TestApp {
        Self::build(|_| {}, None, true).await
    }

    /// With this storage instead of the configured one (e.g. a failing MemoryStore).
    pub async fn spawn_with_store(store: toxtemp::storage::Store) -> TestApp {
        Self::build(|_| {}, Some(store), false).await
    }

    async fn build(adjust: impl FnOnce(&mut Config), store: Option<toxtemp::storage::Store>, s3: bool) -> TestApp {
        toxtemp::telemetry::init();
        let dir = tempfile::tempdir().expect("temp dir");
        let test_db = TestDb::new(dir.path());
        let mut config = Config::for_tests(dir.path(), test_db.url.clone());
        config.import_default_questions = true;
        config.extractor_exe = Some(env!("CARGO_BIN_EXE_toxtemp").into());
        let test_s3 = if s3 { Some(crate::s3::TestS3::start().await) } else { None };
        if let Some(t) = &test_s3 {
            config.storage = toxtemp::config::StorageConfig::S3(t.config.clone());
        }
        adjust(&mut config);
        let mut state = toxtemp::server::prepare(config).expect("app prepares");
        if let Some(store) = store {
            state.store = store;
        }
        state.store.ensure_ready().await.expect("storage ready");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app_state = state.clone();
        let server = actix_web::HttpServer::new(move || toxtemp::web::app(app_state.clone()))
            .workers(1)
            .listen(listener)
            .expect("listen")
            .run();
        actix_web::rt::spawn(server);
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            state,
            client: new_client(),
            _s3: test_s3,
            _dir: dir,
            _db: test_db,
        }
    }

    pub fn conn(&self) -> PooledConn {
        self.state.pool.get().expect("db connection")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// An account with the shared test password.
    pub fn create_person(&self, email: &str, staff: bool) -> Person {
        let spec = PersonSpec { email, display_name: "", is_staff: staff, is_superuser: false };
        toxtemp::auth::create_account(&mut self.conn(), &spec, PASSWORD).expect("account created")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> Html {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        Html::parse_document(&resp.text().await.expect("body"))
    }

    /// The CSRF token the server put into the page's `<meta name="csrf-token">`.
    pub async fn csrf_token(&self) -> String {
        let html = self.get_html("/login").await;
        let token = select_attr(&html, "meta[name=csrf-token]", "content");
        if token.is_empty() {
            // Logged-in sessions are redirected away from nothing: /login always renders.
            panic!("no CSRF token on the login page");
        }
        token
    }

    /// POST a urlencoded form with the session's CSRF token added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf_token().await;
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post_form_raw(path, &all).await
    }

    /// POST exactly these fields (no CSRF token added).
    pub async fn post_form_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url(path)).form(fields).send().await.expect("POST")
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_form("/login", &[("email", email), ("password", password), ("next", "/")]).await
    }

    /// Log in a fresh account and return it.
    pub async fn login_new(&self, email: &str, staff: bool) -> Person {
        let person = self.create_person(email, staff);
        let resp = self.login(email, PASSWORD).await;
        assert_eq!(resp.status(), 303, "login of {email}");
        person
    }

    /// Run queued jobs to the end, as the background workers would.
    pub async fn run_pending_jobs(&self) -> usize {
        toxtemp::jobs::worker::run_pending_jobs(&self.state.workers).await.expect("jobs run")
    }

    /// Submit the StartingForm: text fields and (name, bytes) files, CSRF token in the query.
    pub async fn post_start(&self, fields: &[(&str, &str)], files: &[(&str, Vec<u8>)]) -> reqwest::Response {
        let token = self.csrf_token().await;
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        for (name, bytes) in files {
            let part = reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string());
            form = form.part("files", part);
        }
        self.client
            .post(self.url(&format!("/add/?csrf_token={token}")))
            .multipart(form)
            .send()
            .await
            .expect("POST /add/")
    }

    /// Forget the session (as if another browser).
    pub fn new_browser(&mut self) {
        self.client = new_client();
    }

    /// Create investigation → study → assay over HTTP and return the three ids.
    pub async fn create_tree(&self, title: &str) -> (i32, i32, i32) {
        let inv =
            self.post_form("/investigations/new", &[("title", &format!("{title} inv")), ("description", "")]).await;
        let inv_id = id_from_location(&inv, "/investigations/");
        let study = self
            .post_form(&format!("/investigations/{inv_id}/studies/new"), &[("title", &format!("{title} study"))])
            .await;
        let study_id = id_from_location(&study, "/studies/");
        let set_id = toxtemp::db::models::QuestionSet::all(&mut self.conn()).unwrap()[0].id.to_string();
        let assay = self
            .post_form(
                &format!("/studies/{study_id}/assays/new"),
                &[("title", title), ("description", "neurite outgrowth"), ("question_set_id", &set_id)],
            )
            .await;
        let assay_id = id_from_location(&assay, "/assays/");
        (inv_id, study_id, assay_id)
    }
}

pub fn new_client() -> reqwest::Client {
    toxtemp::llm::install_crypto_provider();
    reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().expect("client")
}

/// The id at the end of a 303's Location header that starts with `prefix`.
pub fn id_from_location(resp: &reqwest::Response, prefix: &str) -> i32 {
    assert_eq!(resp.status(), 303, "expected a redirect, got {}", resp.status());
    let loc = location(resp);
    loc.strip_prefix(prefix).and_then(|rest| rest.parse().ok()).unwrap_or_else(|| panic!("unexpected Location {loc}"))
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

pub fn select_attr(html: &Html, selector: &str, attr: &str) -> String {
    let sel = Selector::parse(selector).expect("selector");
    html.select(&sel).next().and_then(|e| e.value().attr(attr)).unwrap_or_default().to_owned()
}

pub fn select_texts(html: &Html, selector: &str) -> Vec<String> {
    let sel = Selector::parse(selector).expect("selector");
    html.select(&sel).map(|e| e.text().collect::<String>().trim().to_owned()).collect()
}

/// A plain migrated database connection for model tests (no server).
pub fn test_conn(dir: &std::path::Path) -> (TestDb, DbConn) {
    let test_db = TestDb::new(dir);
    let mut conn = db::ConnectionManager::new(test_db.url.clone()).connect().expect("connect");
    db::run_migrations(&mut conn).expect("migrations");
    (test_db, conn)
}

/// A migrated pool for tests of plain functions (no server).
pub fn test_pool(dir: &std::path::Path) -> (TestDb, toxtemp::db::Pool) {
    let test_db = TestDb::new(dir);
    let pool = db::connect(&test_db.url).expect("pool");
    db::run_migrations(&mut pool.get().expect("conn")).expect("migrations");
    (test_db, pool)
}

/// A person with an assay on the ToxTemp v1 questions.
pub struct Fixture {
    pub person: Person,
    pub assay: toxtemp::db::models::Assay,
    pub question_ids: Vec<i32>,
}

pub fn fixture(conn: &mut DbConn) -> Fixture {
    use toxtemp::db::models::assay::AssayFields;
    use toxtemp::db::models::{Assay, Investigation, QuestionSet, Study};
    let set = match QuestionSet::find_by_label(conn, "v1").unwrap() {
        Some(set) => set,
        None => {
            toxtemp::questions::import(conn, toxtemp::questions::TOXTEMP_V1_JSON, "v1", "v1").unwrap();
            QuestionSet::find_by_label(conn, "v1").unwrap().unwrap()
        }
    };
    let email = format!("{}@trip.org", uuid::Uuid::new_v4().simple());
    let spec = PersonSpec { email: &email, display_name: "R", is_staff: false, is_superuser: false };
    let person = toxtemp::db::models::person::create(conn, &spec, "hash").unwrap();
    let inv = Investigation::create(conn, &person, "I", "").unwrap();
    let study = Study::create(conn, inv.id, "S", "").unwrap();
    let fields = AssayFields { title: "A", description: "scope", question_set_id: Some(set.id) };
    let assay = Assay::create(conn, study.id, &fields).unwrap();
    let question_ids = QuestionSet::questions(conn, set.id).unwrap().iter().map(|q| q.id).collect();
    Fixture { person, assay, question_ids }
}
