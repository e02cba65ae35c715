//! `/admin/models`: the language models people may choose for drafting — the environment's
//! provider (the default entry, shown first, not editable) and the configurations staff keep
//! here: create, edit, enable/disable (never delete: runs refer to them) and test the
//! connection with one tiny request. Staff only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use diesel::OptionalExtension;
use diesel::result::DatabaseErrorKind;
use diesel::result::Error::DatabaseError;

use crate::db::models::LlmConfiguration;
use crate::drafting::choice::{self, ConfigurationForm, ConnectionTest, ModelEntry};

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::{Page, flash};
use super::see_other;
use super::viewer::Staff;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/models", web::get().to(list))
        .route("/admin/models", web::post().to(create))
        .route("/admin/models/new", web::get().to(new_form))
        .route("/admin/models/default/test", web::post().to(test_default))
        .route("/admin/models/{id}/edit", web::get().to(edit_form))
        .route("/admin/models/{id}", web::post().to(update))
        .route("/admin/models/{id}/enabled", web::post().to(set_enabled))
        .route("/admin/models/{id}/test", web::post().to(test));
}

#[derive(Template)]
#[template(path = "admin/models.html")]
pub struct ModelsPage {
    page: Page,
    /// The default entry first, then every configuration.
    entries: Vec<ModelEntry>,
    /// The variables named by configurations that are set right now.
    keys_set: Vec<String>,
    /// The result of "test connection", on the page that answers it: (entry name, result).
    tested: Option<(String, ConnectionTest)>,
    /// The viewer may add and change configurations.
    superuser: bool,
}

impl ModelsPage {
    fn key_set(&self, entry: &ModelEntry) -> bool {
        self.keys_set.contains(&entry.api_key_env)
    }
}

use super::rendered as html;

/// Only a superuser adds, changes or (re-)offers a configuration: its base URL is where the
/// server sends documents and a key, and may be any address the server can reach. Other
/// staff see the list and test the connections.
fn superuser_only(viewer: &super::viewer::Viewer) -> AppResult<()> {
    match viewer.person.is_superuser {
        true => Ok(()),
        false => Err(AppError::Rejected(
            StatusCode::FORBIDDEN,
            "Only a superuser adds or changes language-model configurations.".into(),
        )),
    }
}

async fn models_page(
    state: &AppState,
    page: Page,
    tested: Option<(String, ConnectionTest)>,
) -> AppResult<HttpResponse> {
    let llm = state.config().llm.clone();
    let entries = state.db(move |c| Ok(choice::all_entries(c, &llm)?)).await?;
    let secrets = &state.config().secrets;
    let keys_set = entries
        .iter()
        .filter(|e| !e.api_key_env.is_empty() && secrets.get(&e.api_key_env).is_some())
        .map(|e| e.api_key_env.clone())
        .collect();
    let superuser = page.user.as_ref().is_some_and(|u| u.is_superuser);
    html(StatusCode::OK, ModelsPage { page, entries, keys_set, tested, superuser })
}

pub async fn list(state: web::Data<AppState>, Staff(viewer): Staff) -> AppResult<HttpResponse> {
    models_page(&state, viewer.page(), None).await
}

#[derive(Template)]
#[template(path = "admin/model_form.html")]
pub struct ModelFormPage {
    page: Page,
    /// `None`: a new configuration.
    id: Option<i32>,
    form: ConfigurationForm,
    error: Option<String>,
}

fn form_page(page: Page, id: Option<i32>, form: ConfigurationForm, error: Option<String>) -> AppResult<HttpResponse> {
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    html(status, ModelFormPage { page, id, form, error })
}

pub async fn new_form(Staff(viewer): Staff) -> AppResult<HttpResponse> {
    superuser_only(&viewer)?;
    let form = ConfigurationForm { context_window: "128000".into(), ..ConfigurationForm::default() };
    form_page(viewer.page(), None, form, None)
}

pub async fn edit_form(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<i32>,
) -> AppResult<HttpResponse> {
    superuser_only(&viewer)?;
    let id = path.into_inner();
    let config = state.db(move |c| Ok(LlmConfiguration::find(c, id)?)).await?;
    form_page(viewer.page(), Some(id), ConfigurationForm::of(&config), None)
}

/// Check the form and save it (`id`: the configuration edited), or say what to correct.
async fn save(state: &AppState, id: Option<i32>, form: &ConfigurationForm) -> AppResult<Result<i32, String>> {
    let fields = match form.parse() {
        Ok(fields) => fields,
        Err(message) => return Ok(Err(message)),
    };
    let taken = format!("Another configuration is already called “{}”.", fields.name);
    state
        .db(move |c| {
            let saved = crate::db::write_transaction(c, |c| {
                if LlmConfiguration::name_taken(c, &fields.name, id)? {
                    return Ok(None);
                }
                match id {
                    Some(id) => {
                        LlmConfiguration::find(c, id)?;
                        LlmConfiguration::update(c, id, &fields)?;
                        Ok(Some(id))
                    }
                    None => Ok(Some(LlmConfiguration::create(c, &fields)?.id)),
                }
            });
            // Two forms saving the same name at once: the unique index refuses the second.
            match saved {
                Ok(Some(id)) => Ok(Ok(id)),
                Ok(None) | Err(DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(Err(taken)),
                Err(err) => Err(err.into()),
            }
        })
        .await
}

pub async fn create(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    form: web::Form<ConfigurationForm>,
) -> AppResult<HttpResponse> {
    superuser_only(&viewer)?;
    let form = form.into_inner();
    match save(&state, None, &form).await? {
        Ok(_) => {
            flash(&viewer.session, "success", format!("Configuration “{}” created.", form.name.trim()));
            Ok(see_other("/admin/models"))
        }
        Err(message) => form_page(viewer.page(), None, form, Some(message)),
    }
}

pub async fn update(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<i32>,
    form: web::Form<ConfigurationForm>,
) -> AppResult<HttpResponse> {
    superuser_only(&viewer)?;
    let (id, form) = (path.into_inner(), form.into_inner());
    match save(&state, Some(id), &form).await? {
        Ok(_) => {
            flash(&viewer.session, "success", format!("Configuration “{}” saved.", form.name.trim()));
            Ok(see_other("/admin/models"))
        }
        Err(message) => form_page(viewer.page(), Some(id), form, Some(message)),
    }
}

#[derive(serde::Deserialize)]
pub struct EnabledForm {
    #[serde(default)]
    enabled: String,
}

/// Offer a configuration to people again, or stop offering it (runs that chose it before
/// still run and keep their record).
pub async fn set_enabled(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<i32>,
    form: web::Form<EnabledForm>,
) -> AppResult<HttpResponse> {
    superuser_only(&viewer)?;
    let (id, enabled) = (path.into_inner(), form.enabled == "on");
    let name = state
        .db(move |c| {
            let config = LlmConfiguration::find(c, id)?;
            LlmConfiguration::set_enabled(c, id, enabled)?;
            Ok(config.name)
        })
        .await?;
    let what = if enabled { "is offered again" } else { "is no longer offered" };
    flash(&viewer.session, "success", format!("“{name}” {what}."));
    Ok(see_other("/admin/models"))
}

/// "Test connection": one tiny request with the configuration, its key looked up now.
pub async fn test(state: web::Data<AppState>, Staff(viewer): Staff, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let config = state.db(move |c| Ok(LlmConfiguration::find(c, id).optional()?)).await?.ok_or(AppError::NotFound)?;
    let entry = ModelEntry::from_configuration(&config);
    let result = choice::test_connection(state.config(), &entry).await;
    models_page(&state, viewer.page(), Some((entry.name, result))).await
}

/// "Test connection" of the environment's provider (`LLM_*`).
pub async fn test_default(state: web::Data<AppState>, Staff(viewer): Staff) -> AppResult<HttpResponse> {
    let entry = ModelEntry::default_entry(&state.config().llm);
    let result = choice::test_connection(state.config(), &entry).await;
    models_page(&state, viewer.page(), Some((entry.name, result))).await
}
