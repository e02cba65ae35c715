//! Test fixtures, all built through the production start-up path (`AppContext::build`,
//! `startup::prepare`, `startup::Application`):
//!
//! - [`TestEnv`]: a migrated database with the ToxTemp v1 questions and one person's assay,
//!   an application context (memory storage and the offline model unless told otherwise) —
//!   for the use cases and file operations without HTTP;
//! - [`TestApp`]: the real server on a loopback port and a cookie-keeping client, built with
//!   [`TestApp::builder`].
//!
//! Each gets its own SQLite file, or its own schema on PostgreSQL when `TEST_DATABASE_URL` is
//! set. Logs are shown only with `TEST_LOG=1`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use reqwest::redirect::Policy;
use scraper::{Html, Selector};
use toxtemp::config::{Config, DatabaseUrl, RetryPolicy, StorageConfig};
use toxtemp::context::AppContext;
use toxtemp::db::models::person::PersonSpec;
use toxtemp::db::models::{Assay, Investigation, Person, QuestionSet, Study};
use toxtemp::db::{DbConn, Pool, PooledConn};
use toxtemp::drafting::{self, DraftRequest, IncomingFile, Scope, Submitted, Target, Upload};
use toxtemp::llm::LlmProvider;
use toxtemp::storage::Store;
use toxtemp::storage::memory::MemoryStore;

use crate::s3::TestS3;

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

impl TestDb {
    /// Take the database away from a running server (`away`), or give it back: the SQLite
    /// file is moved, the PostgreSQL schema renamed.
    pub fn take_away(&self, away: bool) {
        let moved = |name: &str| format!("{name}_away");
        match (&self.url, &self.pg_cleanup) {
            (_, Some((base, schema))) => {
                let (from, to) = if away { (schema.clone(), moved(schema)) } else { (moved(schema), schema.clone()) };
                let mut admin = diesel::PgConnection::establish(base).expect("TEST_DATABASE_URL reachable");
                admin.batch_execute(&format!("ALTER SCHEMA {from} RENAME TO {to}")).expect("rename schema");
            }
            (DatabaseUrl::Sqlite(path), None) => {
                let elsewhere = path.with_extension("away");
                let (from, to) = if away { (path, &elsewhere) } else { (&elsewhere, path) };
                std::fs::rename(from, to).expect("move the database file");
            }
            (DatabaseUrl::Postgres(_), None) => unreachable!("PostgreSQL test databases are schemas"),
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

fn init_logs() {
    if std::env::var("TEST_LOG").is_ok_and(|v| !v.is_empty() && v != "0") {
        toxtemp::telemetry::init();
    }
}

/// The test configuration: everything in `dir`, the real extractor binary, quick retries.
fn test_config(dir: &std::path::Path, db: &TestDb) -> Config {
    let mut config = Config::for_tests(dir, db.url.clone());
    config.extractor_exe = Some(env!("CARGO_BIN_EXE_toxtemp").into());
    config.pipeline.retry =
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(10), max_delay: Duration::from_millis(1500) };
    config
}

/// A migrated database with nothing in it (no question set): for the import tests.
pub struct EmptyDb {
    pub conn: DbConn,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

impl EmptyDb {
    pub fn new() -> Self {
        use diesel::r2d2::ManageConnection;
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::new(dir.path());
        let mut conn = toxtemp::db::ConnectionManager::new(db.url.clone()).connect().expect("connect");
        toxtemp::db::run_migrations(&mut conn).expect("migrations");
        Self { conn, _db: db, _dir: dir }
    }
}

/// A person with an assay on the ToxTemp v1 questions.
pub struct Fixture {
    pub person: Person,
    pub assay: Assay,
    pub question_ids: Vec<i32>,
}

pub fn fixture(conn: &mut DbConn) -> Fixture {
    use toxtemp::db::models::assay::AssayFields;
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

/// The application without HTTP: a context, a fixture assay, a temp dir for files.
pub struct TestEnv {
    pub ctx: AppContext,
    pub f: Fixture,
    /// The store the context starts with (replaced by [`TestEnv::with_s3`]).
    pub memory: Arc<MemoryStore>,
    pub dir: tempfile::TempDir,
    _s3: Option<TestS3>,
    _db: TestDb,
}

impl TestEnv {
    pub fn new() -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::new(dir.path());
        let memory = Arc::new(MemoryStore::new());
        let ctx = AppContext::build(test_config(dir.path(), &db)).expect("context").with_store(memory.clone());
        let f = fixture(&mut ctx.pool.get().expect("connection"));
        Self { ctx, f, memory, dir, _s3: None, _db: db }
    }

    /// Documents go to a real S3 protocol (embedded s3s-fs, or Garage in CI).
    pub async fn with_s3(mut self) -> Self {
        let s3 = TestS3::start().await;
        self.ctx = self.ctx.with_store(s3.store());
        self._s3 = Some(s3);
        self
    }

    pub fn with_provider(mut self, provider: Arc<dyn LlmProvider>) -> Self {
        self.ctx = self.ctx.with_provider(provider);
        self
    }

    pub fn s3(&self) -> &TestS3 {
        self._s3.as_ref().expect("with_s3")
    }

    pub fn pool(&self) -> &Pool {
        &self.ctx.pool
    }

    pub fn conn(&self) -> PooledConn {
        self.ctx.pool.get().expect("db connection")
    }

    /// Another person's assay in the same database.
    pub fn other_fixture(&self) -> Fixture {
        fixture(&mut self.conn())
    }

    /// Submit files on disk for the fixture assay, as its owner.
    pub async fn submit(&self, files: Vec<(String, PathBuf)>, keep: bool, questions: Option<Vec<i32>>) -> Submitted {
        self.try_submit(files, keep, questions, false).await.expect("submitted")
    }

    pub async fn try_submit(
        &self,
        files: Vec<(String, PathBuf)>,
        keep: bool,
        questions: Option<Vec<i32>>,
        extract_images: bool,
    ) -> Result<Submitted, drafting::DraftError> {
        let mut incoming = Vec::new();
        for (name, path) in files {
            incoming.push(IncomingFile::from_path(path, name).await.expect("readable file"));
        }
        let request = DraftRequest {
            uploader: self.f.person.clone(),
            target: Target::Existing(self.f.assay.id),
            question_set_id: None,
            scope: questions.map(Scope::Questions).unwrap_or(Scope::All { overwrite: true }),
            upload: Upload::of_files(incoming),
            keep_files: keep,
            extract_images,
            model: drafting::choice::ModelChoice::Default,
        };
        drafting::submit(&self.ctx, request).await
    }

    /// Run queued jobs to the end, as the background workers would.
    pub async fn run_jobs(&self) -> usize {
        toxtemp::startup::run_pending_jobs(&self.ctx).await.expect("jobs run")
    }

    /// Write a file into the temp dir and return (name, path) for [`TestEnv::submit`].
    pub fn file(&self, name: &str, bytes: &[u8]) -> (String, PathBuf) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        (name.to_owned(), path)
    }
}

type ConfigChange = Box<dyn FnOnce(&mut Config)>;

/// How a [`TestApp`] differs from the default (SQLite or PostgreSQL, local objects).
#[derive(Default)]
pub struct TestAppBuilder {
    s3: bool,
    store: Option<Store>,
    adjust: Option<ConfigChange>,
}

impl TestAppBuilder {
    /// Documents go to a real S3 protocol (embedded s3s-fs, or Garage in CI).
    pub fn s3(mut self) -> Self {
        self.s3 = true;
        self
    }

    /// With this storage instead of the configured one (e.g. a failing MemoryStore).
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    pub fn config(mut self, adjust: impl FnOnce(&mut Config) + 'static) -> Self {
        self.adjust = Some(Box::new(adjust));
        self
    }

    /// Prepare the app as `serve` does (questions imported) and start its server.
    pub async fn spawn(self) -> TestApp {
        init_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::new(dir.path());
        let mut config = test_config(dir.path(), &db);
        config.import_default_questions = true;
        let s3 = if self.s3 { Some(TestS3::start().await) } else { None };
        if let Some(s3) = &s3 {
            config.storage = StorageConfig::S3(s3.config.clone());
        }
        if let Some(adjust) = self.adjust {
            adjust(&mut config);
        }
        let mut ctx = toxtemp::startup::prepare(config).expect("app prepares");
        if let Some(store) = self.store {
            ctx = ctx.with_store(store);
        }
        ctx.store.ensure_ready().await.expect("storage ready");
        let app = toxtemp::startup::Application::build(ctx.clone()).expect("server builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        actix_web::rt::spawn(app.run_until_stopped());
        TestApp { address, ctx, client: new_client(), _s3: s3, _dir: dir, _db: db }
    }
}

pub struct TestApp {
    pub address: String,
    pub ctx: AppContext,
    pub client: reqwest::Client,
    _s3: Option<TestS3>,
    _dir: tempfile::TempDir,
    _db: TestDb,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// The default app: a migrated database with the ToxTemp v1 questions, local objects.
    pub async fn spawn() -> TestApp {
        Self::builder().spawn().await
    }

    pub fn conn(&self) -> PooledConn {
        self.ctx.pool.get().expect("db connection")
    }

    pub fn db(&self) -> &TestDb {
        &self._db
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
        attr(&html, "meta[name=csrf-token]", "content").expect("a CSRF token on the login page")
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

    /// Log in a fresh superuser (staff who may also change staff powers and model
    /// configurations) and return it.
    pub async fn login_superuser(&self, email: &str) -> Person {
        let spec = PersonSpec { email, display_name: "", is_staff: true, is_superuser: true };
        let person = toxtemp::auth::create_account(&mut self.conn(), &spec, PASSWORD).expect("create superuser");
        assert_eq!(self.login(email, PASSWORD).await.status(), 303, "login of {email}");
        person
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
        toxtemp::startup::run_pending_jobs(&self.ctx).await.expect("jobs run")
    }

    /// POST a multipart form to `path` (CSRF token in the query): text fields and
    /// (name, bytes) files in the `files` field.
    pub async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, Vec<u8>)],
    ) -> reqwest::Response {
        let token = self.csrf_token().await;
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        for (name, bytes) in files {
            let part = reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string());
            form = form.part("files", part);
        }
        let sep = if path.contains('?') { '&' } else { '?' };
        self.client
            .post(self.url(&format!("{path}{sep}csrf_token={token}")))
            .multipart(form)
            .send()
            .await
            .expect("POST")
    }

    /// Submit the StartingForm.
    pub async fn post_start(&self, fields: &[(&str, &str)], files: &[(&str, Vec<u8>)]) -> reqwest::Response {
        self.post_multipart("/add/", fields, files).await
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
        let set_id = QuestionSet::all(&mut self.conn()).unwrap()[0].id.to_string();
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

/// The attribute of the first element matching `selector`; `None` when there is no such
/// element or it lacks the attribute.
pub fn attr(html: &Html, selector: &str, name: &str) -> Option<String> {
    let sel = Selector::parse(selector).expect("selector");
    html.select(&sel).next().and_then(|e| e.value().attr(name)).map(str::to_owned)
}

/// The attribute's value, empty when absent: for values, never for boolean attributes.
pub fn select_attr(html: &Html, selector: &str, name: &str) -> String {
    attr(html, selector, name).unwrap_or_default()
}

/// Does the first element matching `selector` carry the (boolean) attribute `name`?
/// (`select_attr(..) == ""` cannot tell `checked` from its absence.)
pub fn has_attr(html: &Html, selector: &str, name: &str) -> bool {
    attr(html, selector, name).is_some()
}

pub fn select_texts(html: &Html, selector: &str) -> Vec<String> {
    let sel = Selector::parse(selector).expect("selector");
    html.select(&sel).map(|e| e.text().collect::<String>().trim().to_owned()).collect()
}
