//! Workspaces and sharing: who may do what with a shared investigation (the authorisation
//! matrix over every assay-scoped route, again after a removal and an unshare), managing a
//! workspace, the sharing history, consent per uploader, and what the overview and the
//! StartingForm list.

use diesel::prelude::*;
use toxtemp::db::models::{FileAsset, FileAssetStatus, QuestionSet};
use toxtemp::db::schema::{file_assets, file_audit_events};

use crate::answers::{drafted, files};
use crate::helpers::{TestApp, id_from_location, select_attr, select_texts};

const OWNER: usize = 0;
const ADMIN: usize = 1;
const MEMBER: usize = 2;
const STRANGER: usize = 3;
const STAFF: usize = 4;
const ROLES: [&str; 5] = ["owner", "workspace admin", "workspace member", "non-member", "staff"];

/// An investigation of `owner@` (one assay, drafted from two kept files) shared into a
/// workspace with `admin@` as admin and `member@` as member; `stranger@` and `staff@` are
/// in no workspace. Each has their own logged-in browser.
struct Shared {
    app: TestApp,
    browsers: Vec<reqwest::Client>,
    ids: Vec<i32>,
    workspace: i32,
    inv: i32,
    study: i32,
    assay: i32,
    question: i32,
}

impl Shared {
    async fn new() -> Self {
        let mut app = TestApp::spawn().await;
        let assay = drafted(&app, "owner@example.org").await;
        let owner = toxtemp::db::models::Person::find_by_email(&mut app.conn(), "owner@example.org").unwrap().unwrap();
        let (mut browsers, mut ids) = (vec![app.client.clone()], vec![owner.id]);
        for (email, staff) in [
            ("admin@example.org", false),
            ("member@example.org", false),
            ("stranger@example.org", false),
            ("staff@example.org", true),
        ] {
            app.new_browser();
            ids.push(app.login_new(email, staff).await.id);
            browsers.push(app.client.clone());
        }
        app.client = browsers[OWNER].clone();
        let (study, inv) = study_of(&app, assay);
        let workspace = create_workspace(&app, "Neurotox lab").await;
        for (email, role) in [("admin@example.org", "admin"), ("member@example.org", "member")] {
            let resp =
                app.post_form(&format!("/workspaces/{workspace}/members"), &[("email", email), ("role", role)]).await;
            assert_eq!(resp.status(), 303, "{email} added");
        }
        share(&app, inv, workspace).await;
        let question = QuestionSet::questions(&mut app.conn(), 1).unwrap()[0].id;
        Shared { app, browsers, ids, workspace, inv, study, assay, question }
    }

    fn as_(&mut self, role: usize) -> &TestApp {
        self.app.client = self.browsers[role].clone();
        &self.app
    }

    /// Send `request` as `role` and give the status; queued drafting runs to the end, so that
    /// the next upload does not find a run in progress.
    async fn status(&mut self, role: usize, request: &Request) -> u16 {
        let app = self.as_(role);
        let status = request.send(app).await;
        app.run_pending_jobs().await;
        status
    }

    /// Check each request for each role against its expected status.
    async fn check(&mut self, requests: &[(Request, [u16; 5])], roles: &[usize]) {
        for (request, expected) in requests {
            for &role in roles {
                let got = self.status(role, request).await;
                assert_eq!(got, expected[role], "{} → {request:?}", ROLES[role]);
            }
        }
    }

    /// Every assay-scoped route that reads or contributes, with what each role gets.
    fn read_and_contribute(&self) -> Vec<(Request, [u16; 5])> {
        let (inv, study, assay, q) = (self.inv, self.study, self.assay, self.question);
        let seen = [200, 200, 200, 404, 200];
        let contributed = [303, 303, 303, 404, 403];
        let mut checks: Vec<(Request, [u16; 5])> = [
            format!("/investigations/{inv}"),
            format!("/studies/{study}"),
            format!("/assays/{assay}"),
            format!("/assays/{assay}/answers"),
            format!("/assays/{assay}/export.json"),
            format!("/assays/{assay}/export.md"),
            format!("/assays/{assay}/export.docx"),
            format!("/assays/{assay}/export.html"),
            format!("/assays/{assay}/export.pdf"),
        ]
        .into_iter()
        .map(|path| (Request::Get(path), seen))
        .collect();
        checks.extend([
            (Request::Get(format!("/assays/{assay}/answers/{q}/evidence")), seen),
            (Request::Get(format!("/admin/assays/{assay}")), [403, 403, 403, 403, 200]),
            (Request::Get(format!("/assays/{assay}/answers/{q}/edit")), [200, 200, 200, 404, 403]),
            (Request::Upload(assay), contributed),
            (Request::Regenerate(assay, q), contributed),
            (
                Request::post(format!("/assays/{assay}/answers/{q}"), &[("text", "Edited together"), ("accepted", "")]),
                contributed,
            ),
            (Request::post(format!("/assays/{assay}/answers/{q}/accept"), &[("accepted", "on")]), contributed),
            (Request::post(format!("/admin/assays/{assay}/files.zip"), &[]), [403, 403, 403, 403, 200]),
        ]);
        checks
    }

    /// The owner's routes: edit, delete, withdraw the whole assay's consent, (un)share.
    fn owner_only(&self) -> Vec<(Request, [u16; 5])> {
        let (inv, study, assay, ws) = (self.inv, self.study, self.assay, self.workspace.to_string());
        let refused = [0, 403, 403, 404, 403];
        vec![
            (Request::Get(format!("/investigations/{inv}/edit")), refused),
            (Request::post(format!("/investigations/{inv}/edit"), &[("title", "Taken over")]), refused),
            (Request::post(format!("/investigations/{inv}/studies/new"), &[("title", "Extra")]), refused),
            (Request::Get(format!("/assays/{assay}/edit")), refused),
            (Request::post(format!("/assays/{assay}/edit"), &[("title", "Taken over")]), refused),
            (Request::Get(format!("/investigations/{inv}/studies/new")), refused),
            (Request::Get(format!("/studies/{study}/edit")), refused),
            (Request::post(format!("/studies/{study}/edit"), &[("title", "Taken over")]), refused),
            (Request::Get(format!("/studies/{study}/assays/new")), refused),
            (Request::post(format!("/studies/{study}/assays/new"), &[("title", "Extra")]), refused),
            (Request::post(format!("/investigations/{inv}/unshare"), &[("workspace_id", &ws)]), refused),
            (Request::post(format!("/assays/{assay}/withdraw-consent"), &[]), refused),
            (Request::post(format!("/assays/{assay}/delete"), &[]), refused),
            (Request::post(format!("/studies/{study}/delete"), &[]), refused),
            (Request::post(format!("/investigations/{inv}/delete"), &[]), refused),
        ]
    }

    /// The kept files uploaded by `role`.
    fn kept_of(&self, role: usize) -> Vec<FileAsset> {
        file_assets::table
            .filter(file_assets::uploaded_by.eq(self.ids[role]))
            .filter(file_assets::status.eq(FileAssetStatus::Available))
            .select(FileAsset::as_select())
            .load(&mut *self.app.conn())
            .unwrap()
    }

    fn withdraw_file(&self, file: &FileAsset) -> Request {
        Request::post(format!("/assays/{}/files/{}/withdraw-consent", self.assay, file.id), &[])
    }
}

#[derive(Debug)]
enum Request {
    Get(String),
    Post(String, Vec<(&'static str, String)>),
    /// The StartingForm, into an existing assay, keeping the documents.
    Upload(i32),
    /// Regenerate one question from a new document, keeping it.
    Regenerate(i32, i32),
}

impl Request {
    fn post(path: String, fields: &[(&'static str, &str)]) -> Self {
        Request::Post(path, fields.iter().map(|(k, v)| (*k, v.to_string())).collect())
    }

    async fn send(&self, app: &TestApp) -> u16 {
        let resp = match self {
            Request::Get(path) => app.get(path).await,
            Request::Post(path, fields) => {
                let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                app.post_form(path, &fields).await
            }
            Request::Upload(assay) => {
                let id = assay.to_string();
                let fields = [("assay_id", id.as_str()), ("overwrite", "on"), ("share_files_for_development", "on")];
                app.post_start(&fields, &[("notes.txt", b"Neurite outgrowth notes from the lab".to_vec())]).await
            }
            Request::Regenerate(assay, question) => {
                let q = question.to_string();
                let fields = [("question_ids", q.as_str()), ("share_files_for_development", "on")];
                let path = format!("/assays/{assay}/regenerate");
                app.post_multipart(&path, &fields, &[("update.txt", b"Day 6 imaging update".to_vec())]).await
            }
        };
        resp.status().as_u16()
    }
}

/// (study, investigation) of an assay.
fn study_of(app: &TestApp, assay: i32) -> (i32, i32) {
    use toxtemp::db::schema::{assays, studies};
    assays::table
        .inner_join(studies::table)
        .filter(assays::id.eq(assay))
        .select((studies::id, studies::investigation_id))
        .first(&mut *app.conn())
        .unwrap()
}

async fn create_workspace(app: &TestApp, name: &str) -> i32 {
    id_from_location(&app.post_form("/workspaces", &[("name", name)]).await, "/workspaces/")
}

async fn share(app: &TestApp, inv: i32, workspace: i32) {
    let resp =
        app.post_form(&format!("/investigations/{inv}/share"), &[("workspace_id", &workspace.to_string())]).await;
    assert_eq!(resp.status(), 303, "shared");
}

/// The kinds of the workspace's history, oldest first.
async fn history(app: &TestApp, workspace: i32) -> Vec<String> {
    let page = app.get_html(&format!("/workspaces/{workspace}")).await;
    let sel = scraper::Selector::parse("#history tbody tr").unwrap();
    let mut kinds: Vec<String> = page.select(&sel).map(|tr| tr.value().attr("data-kind").unwrap().to_owned()).collect();
    kinds.reverse();
    kinds
}

#[actix_web::test]
async fn every_role_gets_what_it_may_on_every_assay_scoped_route_until_access_is_revoked() {
    let mut s = Shared::new().await;
    let all = [OWNER, ADMIN, MEMBER, STRANGER, STAFF];
    let checks = s.read_and_contribute();
    s.check(&checks, &all).await;
    let refusals = s.owner_only();
    s.check(&refusals, &[ADMIN, MEMBER, STRANGER, STAFF]).await;
    let edit = format!("/investigations/{}/edit", s.inv);
    assert_eq!(s.as_(OWNER).get(&edit).await.status(), 200);

    // Consent is personal: each uploader withdraws their own file, the owner any; others 403.
    let (owners, admins, members) = (s.kept_of(OWNER), s.kept_of(ADMIN), s.kept_of(MEMBER));
    assert!(!owners.is_empty() && !admins.is_empty() && !members.is_empty(), "every contributor kept files");
    let owners_file = s.withdraw_file(&owners[0]);
    for (role, expected) in [(ADMIN, 403), (MEMBER, 403), (STRANGER, 404), (STAFF, 403)] {
        assert_eq!(s.status(role, &owners_file).await, expected, "{} withdraws the owner's file", ROLES[role]);
    }
    let admins_file = s.withdraw_file(&admins[0]);
    assert_eq!(s.status(MEMBER, &admins_file).await, 403, "a member withdraws an admin's file");
    assert_eq!(s.status(MEMBER, &s.withdraw_file(&members[0])).await, 303, "the uploader withdraws their own");
    assert_eq!(s.status(OWNER, &owners_file).await, 303, "the owner withdraws theirs");
    assert_eq!(FileAsset::find(&mut s.app.conn(), &members[0].id).unwrap().status, FileAssetStatus::Deleted);
    let events: Vec<(String, String)> = file_audit_events::table
        .filter(file_audit_events::file_id.eq(&members[0].id))
        .select((file_audit_events::event, file_audit_events::actor))
        .load(&mut *s.app.conn())
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "consent_withdrawn");
    assert!(events[0].1.contains("member@example.org"), "{events:?}");
    assert!(!s.kept_of(ADMIN).is_empty(), "the others' files stay");

    // The assay page shows who uploaded each file and offers withdrawal where allowed.
    let assay_page = format!("/assays/{}", s.assay);
    let page = s.as_(MEMBER).get_html(&assay_page).await;
    let uploaders = select_texts(&page, "#kept-files .uploader");
    assert!(uploaders.iter().any(|u| u.contains("admin@example.org")), "{uploaders:?}");
    assert_eq!(
        select_texts(&page, ".withdraw-file").len(),
        s.kept_of(MEMBER).len(),
        "a member withdraws their own files only"
    );
    assert!(select_texts(&page, "#withdraw-consent").is_empty(), "the whole assay's withdrawal is the owner's");
    assert!(select_texts(&page, "#delete-assay").is_empty());
    let page = s.as_(OWNER).get_html(&assay_page).await;
    assert_eq!(select_texts(&page, ".withdraw-file").len(), select_texts(&page, "#kept-files li").len());

    // Removing the member revokes their access at once: 404 everywhere, like a stranger.
    let member_id = s.ids[MEMBER].to_string();
    let path = format!("/workspaces/{}/members/{member_id}/remove", s.workspace);
    assert_eq!(s.as_(ADMIN).post_form(&path, &[]).await.status(), 303);
    let mut gone: Vec<(Request, [u16; 5])> = s
        .read_and_contribute()
        .into_iter()
        // The staff pages say 403 to everyone else, members or not.
        .filter(|(r, _)| !matches!(r, Request::Post(p, _) | Request::Get(p) if p.starts_with("/admin/")))
        .collect();
    gone.extend(s.owner_only());
    gone.push((s.withdraw_file(&s.kept_of(ADMIN)[0]), [0; 5]));
    let not_found: Vec<(Request, [u16; 5])> = gone.into_iter().map(|(r, _)| (r, [404; 5])).collect();
    s.check(&not_found, &[MEMBER]).await;
    assert_eq!(s.status(ADMIN, &Request::Get(format!("/assays/{}", s.assay))).await, 200, "the admin still sees it");

    // Unsharing revokes the admin's access too; the owner and staff keep theirs.
    let ws = s.workspace.to_string();
    let resp = {
        let unshare = format!("/investigations/{}/unshare", s.inv);
        s.as_(OWNER).post_form(&unshare, &[("workspace_id", &ws)]).await
    };
    assert_eq!(resp.status(), 303);
    s.check(&not_found, &[ADMIN]).await;
    assert_eq!(s.status(OWNER, &Request::Get(format!("/assays/{}/answers", s.assay))).await, 200);
    assert_eq!(s.status(STAFF, &Request::Get(format!("/assays/{}/answers", s.assay))).await, 200);

    // Only the owner deletes, innermost first.
    for path in [
        format!("/assays/{}/delete", s.assay),
        format!("/studies/{}/delete", s.study),
        format!("/investigations/{}/delete", s.inv),
    ] {
        assert_eq!(s.status(OWNER, &Request::Post(path.clone(), vec![])).await, 303, "{path}");
    }
}

#[actix_web::test]
async fn the_owner_withdraws_a_whole_shared_assay_and_access_through_another_workspace_remains() {
    let mut s = Shared::new().await;
    // The member is in a second workspace the investigation is shared into as well.
    let other = create_workspace(s.as_(OWNER), "Second lab").await;
    let resp = s.app.post_form(&format!("/workspaces/{other}/members"), &[("email", "member@example.org")]).await;
    assert_eq!(resp.status(), 303);
    share(&s.app, s.inv, other).await;
    let path = format!("/workspaces/{}/members/{}/remove", s.workspace, s.ids[MEMBER]);
    assert_eq!(s.app.post_form(&path, &[]).await.status(), 303);
    let assay_page = Request::Get(format!("/assays/{}", s.assay));
    assert_eq!(s.status(MEMBER, &assay_page).await, 200, "still shared through the second workspace");
    // Deleting that workspace ends it.
    assert_eq!(s.as_(OWNER).post_form(&format!("/workspaces/{other}/delete"), &[]).await.status(), 303);
    assert_eq!(s.status(MEMBER, &assay_page).await, 404);
    // The owner's per-assay withdrawal still works on a shared assay.
    assert_eq!(s.status(OWNER, &Request::post(format!("/assays/{}/withdraw-consent", s.assay), &[])).await, 303);
    assert!(s.kept_of(OWNER).is_empty());
}

#[actix_web::test]
async fn workspaces_are_managed_by_role_and_every_change_is_in_the_history() {
    let mut app = TestApp::spawn().await;
    let mut browsers = Vec::new();
    for email in ["olga@example.org", "adam@example.org", "mia@example.org", "nina@example.org", "staff@example.org"] {
        app.new_browser();
        app.login_new(email, email.starts_with("staff")).await;
        browsers.push(app.client.clone());
    }
    let [olga, adam, mia, nina, staff] = [0, 1, 2, 3, 4];
    let ids: Vec<i32> = ["olga", "adam", "mia", "nina"]
        .iter()
        .map(|n| {
            toxtemp::db::models::Person::find_by_email(&mut app.conn(), &format!("{n}@example.org"))
                .unwrap()
                .unwrap()
                .id
        })
        .collect();
    app.client = browsers[olga].clone();
    assert_eq!(app.post_form("/workspaces", &[("name", "  ")]).await.status(), 422, "a name is needed");
    let ws = create_workspace(&app, "Neurotox lab").await;
    let members = format!("/workspaces/{ws}/members");
    let list = app.get_html("/workspaces").await;
    assert_eq!(select_texts(&list, "#workspace-list li .badge"), ["owner"]);

    // Adding by e-mail: unknown addresses and members already there are form errors.
    let resp = app.post_form(&members, &[("email", "nobody@example.org"), ("role", "member")]).await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("no account with the e-mail address"));
    assert_eq!(app.post_form(&members, &[("email", "ADAM@example.org"), ("role", "admin")]).await.status(), 303);
    assert_eq!(app.post_form(&members, &[("email", "mia@example.org"), ("role", "member")]).await.status(), 303);
    assert_eq!(app.post_form(&members, &[("email", "mia@example.org")]).await.status(), 422, "already a member");
    assert_eq!(app.post_form(&members, &[("email", "nina@example.org"), ("role", "owner")]).await.status(), 400);
    // Forms without the CSRF token are refused and change nothing.
    let resp = app.post_form_raw(&members, &[("email", "nina@example.org"), ("role", "member")]).await;
    assert_eq!(resp.status(), 403);
    let page = app.get_html(&format!("/workspaces/{ws}")).await;
    assert_eq!(select_texts(&page, "#members .role"), ["owner", "admin", "member"]);

    // A plain member manages nothing; strangers do not see the workspace; staff only look.
    app.client = browsers[mia].clone();
    let remove_adam = format!("/workspaces/{ws}/members/{}/remove", ids[adam]);
    let as_member = [
        (members.clone(), vec![("email", "nina@example.org".to_owned())]),
        (remove_adam.clone(), vec![]),
        (format!("/workspaces/{ws}/members/{}/role", ids[mia]), vec![("role", "admin".to_owned())]),
        (format!("/workspaces/{ws}/transfer"), vec![("person_id", ids[mia].to_string())]),
        (format!("/workspaces/{ws}/delete"), vec![]),
    ];
    for (path, fields) in &as_member {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(app.post_form(path, &fields).await.status(), 403, "member: {path}");
    }
    let page = app.get_html(&format!("/workspaces/{ws}")).await;
    assert!(select_texts(&page, "#add-member").is_empty() && select_texts(&page, ".remove-member").is_empty());
    app.client = browsers[nina].clone();
    assert_eq!(app.get(&format!("/workspaces/{ws}")).await.status(), 404);
    for (path, fields) in &as_member {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(app.post_form(path, &fields).await.status(), 404, "stranger: {path}");
    }
    app.client = browsers[staff].clone();
    let page = app.get_html(&format!("/workspaces/{ws}")).await;
    assert!(select_texts(&page, "#add-member").is_empty(), "staff only look");
    for (path, fields) in &as_member {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(app.post_form(path, &fields).await.status(), 403, "staff: {path}");
    }
    let admin_page = app.get_html("/admin/workspaces").await;
    let row = select_texts(&admin_page, &format!("#workspaces tr[data-workspace-id=\"{ws}\"]"));
    assert!(row[0].contains("olga@example.org") && row[0].contains("mia@example.org"), "{row:?}");

    // An admin adds, changes roles and removes members, but neither deletes nor transfers, and
    // the owner stays.
    app.client = browsers[adam].clone();
    assert_eq!(app.post_form(&members, &[("email", "nina@example.org"), ("role", "member")]).await.status(), 303);
    let role = format!("/workspaces/{ws}/members/{}/role", ids[nina]);
    assert_eq!(app.post_form(&role, &[("role", "admin")]).await.status(), 303);
    let remove_nina = format!("/workspaces/{ws}/members/{}/remove", ids[nina]);
    assert_eq!(app.post_form(&remove_nina, &[]).await.status(), 303);
    let remove_olga = format!("/workspaces/{ws}/members/{}/remove", ids[olga]);
    assert_eq!(app.post_form(&remove_olga, &[]).await.status(), 422, "the owner cannot be removed");
    assert_eq!(app.post_form(&format!("/workspaces/{ws}/delete"), &[]).await.status(), 403);
    let transfer = format!("/workspaces/{ws}/transfer");
    assert_eq!(app.post_form(&transfer, &[("person_id", &ids[adam].to_string())]).await.status(), 403);

    // The owner cannot leave before handing over; a member leaves, and their shares go too.
    app.client = browsers[mia].clone();
    let resp = app.post_form("/investigations/new", &[("title", "Mia's data"), ("description", "")]).await;
    let mia_inv = id_from_location(&resp, "/investigations/");
    let share_mia = format!("/investigations/{mia_inv}/share");
    assert_eq!(
        app.post_form(&share_mia, &[("workspace_id", &ws.to_string())]).await.status(),
        403,
        "members do not share"
    );
    app.client = browsers[olga].clone();
    assert_eq!(app.post_form(&role, &[("role", "admin")]).await.status(), 422, "nina is no member any more");
    let mia_role = format!("/workspaces/{ws}/members/{}/role", ids[mia]);
    assert_eq!(app.post_form(&mia_role, &[("role", "admin")]).await.status(), 303);
    app.client = browsers[mia].clone();
    assert_eq!(app.post_form(&share_mia, &[("workspace_id", &ws.to_string())]).await.status(), 303, "admins share");
    app.client = browsers[adam].clone();
    assert_eq!(app.get(&format!("/investigations/{mia_inv}")).await.status(), 200);
    app.client = browsers[mia].clone();
    assert_eq!(app.post_form(&format!("/workspaces/{ws}/leave"), &[]).await.status(), 303);
    app.client = browsers[adam].clone();
    assert_eq!(app.get(&format!("/investigations/{mia_inv}")).await.status(), 404, "unshared as mia left");
    app.client = browsers[olga].clone();
    assert_eq!(app.post_form(&format!("/workspaces/{ws}/leave"), &[]).await.status(), 422);
    assert_eq!(app.post_form(&transfer, &[("person_id", &ids[adam].to_string())]).await.status(), 303);
    let page = app.get_html(&format!("/workspaces/{ws}")).await;
    assert_eq!(select_texts(&page, "#members .role"), ["owner", "admin"]);
    assert_eq!(select_attr(&page, "#members tbody tr:first-child", "data-person-id"), ids[adam].to_string());
    assert_eq!(app.post_form(&format!("/workspaces/{ws}/delete"), &[]).await.status(), 403, "no longer the owner");

    assert_eq!(
        history(&app, ws).await,
        [
            "workspace_created",
            "member_added",
            "member_added",
            "member_added",
            "role_changed",
            "member_removed",
            "role_changed",
            "investigation_shared",
            "investigation_unshared",
            "member_left",
            "ownership_transferred",
        ]
    );
    let page = app.get_html(&format!("/workspaces/{ws}")).await;
    let rows = select_texts(&page, "#history tbody tr");
    assert!(
        rows.iter().any(|r| r.contains("adam@example.org")
            && r.contains("removed a member")
            && r.contains("nina@example.org")),
        "{rows:?}"
    );

    // The new owner deletes it; the history stays for staff.
    app.client = browsers[adam].clone();
    assert_eq!(app.post_form(&format!("/workspaces/{ws}/delete"), &[]).await.status(), 303);
    assert_eq!(app.get(&format!("/workspaces/{ws}")).await.status(), 404);
    app.client = browsers[staff].clone();
    let admin_page = app.get_html("/admin/workspaces").await;
    assert_eq!(select_attr(&admin_page, "#history tbody tr:first-child", "data-kind"), "workspace_deleted");
}

#[actix_web::test]
async fn shared_assays_are_on_the_overview_and_the_starting_form_of_members_only() {
    let mut s = Shared::new().await;
    let row = format!("#shared-table tr[data-assay-id=\"{}\"]", s.assay);
    let option = format!("#assay_id option[value=\"{}\"]", s.assay);
    let overview = s.as_(MEMBER).get_html("/").await;
    assert_eq!(select_texts(&overview, "#shared-heading"), ["Shared with me"]);
    assert_eq!(select_texts(&overview, &row).len(), 1);
    assert!(select_texts(&overview, "#assay-table").is_empty(), "none of their own");
    let start = s.app.get_html("/add/").await;
    assert_eq!(select_texts(&start, &option).len(), 1, "members upload into the shared assay");
    let status: Vec<serde_json::Value> = s.app.get("/api/assays/status").await.json().await.unwrap();
    assert!(status.iter().any(|r| r["id"] == s.assay), "the overview follows shared assays too");
    // A member adds no study or assay to someone else's investigation through the form.
    let (study, inv) = (s.study.to_string(), s.inv.to_string());
    let fields = [
        ("assay_id", "new"),
        ("study_id", study.as_str()),
        ("investigation_id", inv.as_str()),
        ("new_assay_title", "Mine now"),
    ];
    assert_eq!(s.app.post_start(&fields, &files()).await.status(), 403);

    let overview = s.as_(OWNER).get_html("/").await;
    assert!(select_texts(&overview, "#shared-heading").is_empty(), "the owner's own assays are not 'shared with me'");
    assert_eq!(select_texts(&overview, &format!("#assay-table tr[data-assay-id=\"{}\"]", s.assay)).len(), 1);
    let inv_page = s.app.get_html(&format!("/investigations/{}", s.inv)).await;
    assert_eq!(select_texts(&inv_page, "#shared-in a"), ["Neurotox lab"]);

    let inv_path = format!("/investigations/{}", s.inv);
    let inv_page = s.as_(MEMBER).get_html(&inv_path).await;
    assert!(select_texts(&inv_page, "#sharing").is_empty(), "members do not see where else it is shared");
    assert!(select_texts(&inv_page, "#delete-investigation").is_empty());
    // The owner shares only into workspaces they manage: not into one they are not in.
    let theirs = create_workspace(&s.app, "Member's own").await;
    let (share_path, theirs) = (format!("/investigations/{}/share", s.inv), theirs.to_string());
    let resp = s.as_(OWNER).post_form(&share_path, &[("workspace_id", &theirs)]).await;
    assert_eq!(resp.status(), 422);
    for role in [STRANGER, STAFF] {
        let overview = s.as_(role).get_html("/").await;
        assert!(select_texts(&overview, &row).is_empty(), "{}", ROLES[role]);
    }
    let path = format!("/workspaces/{}/members/{}/remove", s.workspace, s.ids[MEMBER]);
    assert_eq!(s.as_(OWNER).post_form(&path, &[]).await.status(), 303);
    let overview = s.as_(MEMBER).get_html("/").await;
    assert!(select_texts(&overview, &row).is_empty(), "gone once removed");
    let start = s.app.get_html("/add/").await;
    assert!(select_texts(&start, &option).is_empty());
}

#[actix_web::test]
async fn deleting_a_members_account_deletes_what_they_uploaded_into_shared_assays() {
    let mut s = Shared::new().await;
    assert_eq!(s.status(MEMBER, &Request::Upload(s.assay)).await, 303);
    assert_eq!(s.kept_of(MEMBER).len(), 1, "kept with the member's consent");
    let owners = s.kept_of(OWNER).len();
    let member = s.ids[MEMBER];
    let item = toxtemp::deletion::Item::Person(member);
    assert_eq!(toxtemp::deletion::kept_files(&mut s.app.conn(), item).unwrap(), 1, "the confirmation counts it");
    let done = toxtemp::deletion::delete(&s.app.ctx, item, "test").await.unwrap();
    assert_eq!(done.files, 1);
    assert!(s.kept_of(MEMBER).is_empty());
    assert_eq!(s.kept_of(OWNER).len(), owners, "the owner's documents stay");
}
