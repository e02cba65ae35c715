//! Which language model drafts an assay: the provider configured by the environment
//! (`LLM_*`, or the offline provider) — the default entry, always offered, not editable — or
//! one of the configurations staff keep (`llm_configurations`). People choose on the
//! StartingForm and the regenerate form; the choice travels in the drafting job, and the run
//! builds the provider for it when it starts, looking the API key up by its variable name at
//! that moment (`Config::secrets`).
//!
//! The context window is checked at submission against an estimate of the documents' tokens:
//! **characters ÷ 4** (the usual rule of thumb for English text with OpenAI-style tokenizers;
//! numbers and symbols tokenize denser, hence the reserve below). A window too small does not
//! refuse the submission — the documents are already uploaded and the run can still answer
//! from their first part, as it always did when documents were too long — but the person is
//! told at once (a warning on the response and an alert on the assay) which model read how
//! much, so they can choose a larger one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{Config, LLM_KEY_PREFIX, LlmConfig, SecretString, is_llm_key_variable};
use crate::context::AppContext;
use crate::db::DbConn;
use crate::db::models::{ConfigurationFields, LlmConfiguration, NewDraftingRun};
use crate::llm::openai::OpenAiCompatible;
use crate::llm::{LlmError, LlmProvider, metered::MeteredProvider};

/// Characters per token in the estimate of a document's tokens.
pub const CHARS_PER_TOKEN: usize = 4;
/// Tokens of a context window kept for the rules, the question, earlier answers and the
/// answer (at most half the window).
pub const RESERVED_TOKENS: i64 = 4_000;
/// The smallest context window staff may enter.
pub const MIN_CONTEXT_WINDOW: i32 = 256;
/// How long "test connection" waits for the reply.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The estimated tokens of `chars` characters of document text (characters ÷ 4, rounded up).
pub fn estimate_tokens(chars: usize) -> i64 {
    chars.div_ceil(CHARS_PER_TOKEN) as i64
}

/// The tokens of a context window the documents may fill.
pub fn document_tokens(context_window: i64) -> i64 {
    (context_window - RESERVED_TOKENS.min(context_window / 2)).max(0)
}

/// A person's choice of model: the environment's default, or a staff configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelChoice {
    #[default]
    Default,
    Configuration(i32),
}

impl ModelChoice {
    /// A form's value: empty or `default` is the default entry, a number a configuration.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "" | "default" => Ok(Self::Default),
            id => {
                id.parse().map(Self::Configuration).map_err(|_| "Please choose a language model from the list.".into())
            }
        }
    }

    pub fn from_configuration(id: Option<i32>) -> Self {
        id.map_or(Self::Default, Self::Configuration)
    }

    pub fn configuration_id(self) -> Option<i32> {
        match self {
            Self::Default => None,
            Self::Configuration(id) => Some(id),
        }
    }

    /// The value of its `<option>`.
    pub fn form_value(self) -> String {
        self.configuration_id().map_or_else(|| "default".to_owned(), |id| id.to_string())
    }
}

/// A model as offered to people and as recorded with a run.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelEntry {
    pub choice: ModelChoice,
    pub name: String,
    pub model: String,
    /// `None`: the offline provider.
    pub base_url: Option<String>,
    /// The variable holding the API key (configurations only; empty: no key).
    pub api_key_env: String,
    /// Tokens; `None` for the default entry (its limit is `LLM_CONTEXT_CHARS`).
    pub context_window: Option<i64>,
    pub price_prompt_per_mtok: Option<f64>,
    pub price_completion_per_mtok: Option<f64>,
    pub enabled: bool,
}

/// The default entry's name.
pub const DEFAULT_NAME: &str = "Default";

impl ModelEntry {
    /// The provider configured by the environment.
    pub fn default_entry(llm: &LlmConfig) -> Self {
        Self {
            choice: ModelChoice::Default,
            name: DEFAULT_NAME.to_owned(),
            model: if llm.base_url.is_some() { llm.model.clone() } else { "offline".to_owned() },
            base_url: llm.base_url.clone(),
            api_key_env: String::new(),
            context_window: None,
            price_prompt_per_mtok: None,
            price_completion_per_mtok: None,
            enabled: true,
        }
    }

    pub fn from_configuration(c: &LlmConfiguration) -> Self {
        Self {
            choice: ModelChoice::Configuration(c.id),
            name: c.name.clone(),
            model: c.model.clone(),
            base_url: Some(c.base_url.clone()),
            api_key_env: c.api_key_env.clone(),
            context_window: Some(i64::from(c.context_window)),
            price_prompt_per_mtok: c.price_prompt_per_mtok,
            price_completion_per_mtok: c.price_completion_per_mtok,
            enabled: c.enabled,
        }
    }

    /// How the entry reads in a select: "Default (gpt-4o-mini)", "Large (gpt-4o · 128000 tokens)".
    pub fn label(&self) -> String {
        match self.context_window {
            None if self.base_url.is_none() => format!("{} (built-in offline provider)", self.name),
            None => format!("{} ({})", self.name, self.model),
            Some(window) => format!("{} ({} · {window} tokens)", self.name, self.model),
        }
    }

    /// Characters of documents one request may carry: the application's limit, and for a
    /// configuration also what its context window leaves for documents.
    pub fn document_chars(&self, app_chars: usize) -> usize {
        match self.context_window {
            None => app_chars,
            Some(window) => app_chars.min(document_tokens(window) as usize * CHARS_PER_TOKEN),
        }
    }

    /// The warning when the documents (`chars` characters read; `all_read`: none was left
    /// unread) do not fit this model's context window. Only configurations have a window; the
    /// default entry's `LLM_CONTEXT_CHARS` cut has its own note.
    pub fn context_flag(&self, chars: usize, all_read: bool) -> Option<String> {
        let window = self.context_window?;
        let fits = document_tokens(window);
        let tokens = estimate_tokens(chars);
        if tokens <= fits && all_read {
            return None;
        }
        let size = if all_read { format!("about {tokens}") } else { format!("more than {tokens}") };
        Some(format!(
            "The documents ({size} tokens, estimated as characters ÷ 4) do not fit the context window of {} ({}: \
             {window} tokens, of which {fits} are left for documents). The run goes ahead with the first part of the \
             documents; answers may miss details from the rest. Choose a model with a larger context window to use \
             them all.",
            self.name, self.model
        ))
    }

    /// The run record's description of this model.
    pub fn new_run(&self, assay_id: i32, job_id: Option<i32>) -> NewDraftingRun {
        NewDraftingRun {
            assay_id,
            job_id,
            configuration_id: self.choice.configuration_id(),
            configuration_name: self.name.clone(),
            model: self.model.clone(),
            price_prompt_per_mtok: self.price_prompt_per_mtok,
            price_completion_per_mtok: self.price_completion_per_mtok,
        }
    }
}

/// The models people may choose from: the default entry first, then the enabled
/// configurations by name.
pub fn offered(conn: &mut DbConn, llm: &LlmConfig) -> diesel::QueryResult<Vec<ModelEntry>> {
    let mut entries = vec![ModelEntry::default_entry(llm)];
    entries.extend(LlmConfiguration::enabled(conn)?.iter().map(ModelEntry::from_configuration));
    Ok(entries)
}

/// Every entry, disabled configurations included (the staff page).
pub fn all_entries(conn: &mut DbConn, llm: &LlmConfig) -> diesel::QueryResult<Vec<ModelEntry>> {
    let mut entries = vec![ModelEntry::default_entry(llm)];
    entries.extend(LlmConfiguration::all(conn)?.iter().map(ModelEntry::from_configuration));
    Ok(entries)
}

/// The model chosen on a form, if people may choose it now (`None`: unknown or disabled).
pub fn chosen(conn: &mut DbConn, llm: &LlmConfig, choice: ModelChoice) -> diesel::QueryResult<Option<ModelEntry>> {
    use diesel::OptionalExtension;
    Ok(match choice {
        ModelChoice::Default => Some(ModelEntry::default_entry(llm)),
        ModelChoice::Configuration(id) => LlmConfiguration::find(conn, id)
            .optional()?
            .filter(|c| c.enabled)
            .map(|c| ModelEntry::from_configuration(&c)),
    })
}

/// The model a run was scheduled with (a configuration disabled since still runs: it was
/// offered when the person chose it).
pub fn for_run(conn: &mut DbConn, llm: &LlmConfig, choice: ModelChoice) -> diesel::QueryResult<ModelEntry> {
    Ok(match choice {
        ModelChoice::Default => ModelEntry::default_entry(llm),
        ModelChoice::Configuration(id) => ModelEntry::from_configuration(&LlmConfiguration::find(conn, id)?),
    })
}

/// Why a configuration's provider cannot be built; `Display` says it for people.
#[derive(Debug, thiserror::Error)]
pub enum ProviderProblem {
    #[error(
        "The environment variable {variable} that should hold the API key of “{name}” is not set on the server. \
         Please ask the staff to set it, or choose another language model."
    )]
    KeyNotSet { name: String, variable: String },
    #[error("The language model “{0}” could not be set up.")]
    Setup(String, #[source] anyhow::Error),
}

/// The API key of an entry, looked up now: `Ok(None)` when it needs none.
fn api_key(config: &Config, entry: &ModelEntry) -> Result<Option<SecretString>, ProviderProblem> {
    if entry.api_key_env.is_empty() {
        return Ok(None);
    }
    config
        .secrets
        .get(&entry.api_key_env)
        .map(Some)
        .ok_or_else(|| ProviderProblem::KeyNotSet { name: entry.name.clone(), variable: entry.api_key_env.clone() })
}

/// The OpenAI-compatible client of a configuration (built as evaluation runs build theirs:
/// the application's timeouts, the configuration's endpoint, model and key).
/// The default entry's client is the environment's (`LLM_API_KEY`, Azure settings included).
fn client(config: &Config, entry: &ModelEntry, timeout: Duration) -> Result<Option<OpenAiCompatible>, ProviderProblem> {
    let Some(base_url) = &entry.base_url else { return Ok(None) };
    if entry.choice == ModelChoice::Default {
        let llm = LlmConfig { timeout, ..config.llm.clone() };
        return OpenAiCompatible::new(&llm).map(Some).map_err(|e| ProviderProblem::Setup(entry.name.clone(), e));
    }
    let llm = LlmConfig {
        context_chars: entry.document_chars(config.llm.context_chars),
        timeout,
        ..config.llm.for_endpoint(base_url.clone(), entry.model.clone(), api_key(config, entry)?)
    };
    OpenAiCompatible::new(&llm).map(Some).map_err(|e| ProviderProblem::Setup(entry.name.clone(), e))
}

/// The provider that drafts with this entry: the context's own for the default entry,
/// otherwise a client for the configuration (counted in the metrics like the default).
pub fn provider_for(ctx: &AppContext, entry: &ModelEntry) -> Result<Arc<dyn LlmProvider>, ProviderProblem> {
    if entry.choice == ModelChoice::Default {
        return Ok(ctx.provider.clone());
    }
    match client(&ctx.config, entry, ctx.config.llm.timeout)? {
        Some(client) => Ok(MeteredProvider::wrap(Arc::new(client), ctx.metrics.clone())),
        None => Ok(ctx.provider.clone()),
    }
}

/// Characters of documents a run with this entry reads: the context's provider's budget for
/// the default entry, the configuration's (see [`ModelEntry::document_chars`]) otherwise —
/// the same number the run's provider reports.
pub fn document_budget(ctx: &AppContext, entry: &ModelEntry) -> usize {
    match entry.choice {
        ModelChoice::Default => ctx.provider.context_chars(),
        ModelChoice::Configuration(_) => entry.document_chars(ctx.config.llm.context_chars),
    }
}

/// What "test connection" found, in words for staff.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionTest {
    pub ok: bool,
    /// From sending the request to its reply (`None`: nothing was sent).
    pub latency_ms: Option<u128>,
    /// The model's reply (ok), at most 200 characters.
    pub reply: String,
    /// Why it failed, or a note (the offline provider).
    pub problem: String,
}

/// Send one tiny request with this entry, its key looked up now. Never shows the key or an
/// internal error text: each failure is said by its kind.
pub async fn test_connection(config: &Config, entry: &ModelEntry) -> ConnectionTest {
    let failed = |problem: String| ConnectionTest { ok: false, latency_ms: None, reply: String::new(), problem };
    let timeout = config.llm.timeout.min(TEST_TIMEOUT);
    let client = match client(config, entry, timeout) {
        Ok(Some(client)) => client,
        Ok(None) => {
            return ConnectionTest {
                ok: true,
                latency_ms: None,
                reply: String::new(),
                problem: "The built-in offline provider needs no connection.".into(),
            };
        }
        Err(ProviderProblem::KeyNotSet { variable, .. }) => {
            return failed(format!(
                "The environment variable {variable} is not set on the server, so there is no API key to send."
            ));
        }
        Err(ProviderProblem::Setup(..)) => return failed("The HTTP client could not be set up.".into()),
    };
    let started = Instant::now();
    let result = client.ping().await;
    let latency_ms = Some(started.elapsed().as_millis());
    match result {
        Ok(completion) => ConnectionTest {
            ok: true,
            latency_ms,
            reply: completion.text.chars().take(200).collect(),
            problem: String::new(),
        },
        Err(err) => ConnectionTest { latency_ms, ..failed(explain(&err, entry, timeout)) },
    }
}

/// A failed test's reason, by kind (the server's own text is not shown: it may echo the key).
fn explain(err: &LlmError, entry: &ModelEntry, timeout: Duration) -> String {
    match err {
        LlmError::Http { status: 401 | 403, .. } if entry.choice == ModelChoice::Default => {
            "The server refused the API key in LLM_API_KEY (HTTP 401/403).".into()
        }
        LlmError::Http { status: 401 | 403, .. } if entry.api_key_env.is_empty() => {
            "The server asks for an API key (HTTP 401/403): name the variable that holds it.".into()
        }
        LlmError::Http { status: status @ (401 | 403), .. } => format!(
            "The server refused the API key in {} (HTTP {status}): the key is wrong, expired or not allowed to use this model.",
            entry.api_key_env
        ),
        LlmError::Http { status: 404, .. } => {
            "The server answered HTTP 404: the base URL or the model name is probably wrong.".into()
        }
        LlmError::Http { status, .. } => format!("The server refused the request (HTTP {status})."),
        LlmError::RateLimited { .. } => {
            "The server is limiting requests right now (HTTP 429): the key was accepted; try again later.".into()
        }
        LlmError::Server(status) => format!("The server failed (HTTP {status}); try again later."),
        LlmError::Timeout => format!("No answer within {} seconds (timeout).", timeout.as_secs()),
        LlmError::Transport(_) => {
            "The server could not be reached: check the base URL (address, port, http/https) and that it is running."
                .into()
        }
        LlmError::Refused(_) => "The server's reply is not an OpenAI-compatible chat completion.".into(),
    }
}

/// The staff's form for a configuration, as typed.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ConfigurationForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub base_url: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub api_key_env: String,
    #[serde(default)]
    pub context_window: String,
    #[serde(default)]
    pub price_prompt_per_mtok: String,
    #[serde(default)]
    pub price_completion_per_mtok: String,
}

impl ConfigurationForm {
    pub fn of(c: &LlmConfiguration) -> Self {
        let price = |p: Option<f64>| p.map(|p| p.to_string()).unwrap_or_default();
        Self {
            name: c.name.clone(),
            base_url: c.base_url.clone(),
            model: c.model.clone(),
            api_key_env: c.api_key_env.clone(),
            context_window: c.context_window.to_string(),
            price_prompt_per_mtok: price(c.price_prompt_per_mtok),
            price_completion_per_mtok: price(c.price_completion_per_mtok),
        }
    }

    /// The checked fields, or what to correct.
    pub fn parse(&self) -> Result<ConfigurationFields, String> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err("Give the configuration a name (at most 100 characters).".into());
        }
        if name.eq_ignore_ascii_case("default") || name.eq_ignore_ascii_case(DEFAULT_NAME) {
            return Err("“Default” is the name of the environment's provider; choose another name.".into());
        }
        let base_url = self.base_url.trim().trim_end_matches('/');
        let parsed = reqwest::Url::parse(base_url);
        if !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
            return Err("The base URL must be an http(s) address, e.g. https://api.openai.com/v1.".into());
        }
        let model = self.model.trim();
        if model.is_empty() || model.chars().count() > 200 {
            return Err("Name the model (at most 200 characters), e.g. gpt-4o-mini.".into());
        }
        let api_key_env = self.api_key_env.trim();
        if !api_key_env.is_empty() && !is_llm_key_variable(api_key_env) {
            return Err(format!(
                "The API key variable must be the NAME of an environment variable that starts with {LLM_KEY_PREFIX} \
                 (letters, digits and _, e.g. {LLM_KEY_PREFIX}OPENAI), set by the operator — never the key itself, \
                 and no other variable of the server."
            ));
        }
        let context_window: i32 = self
            .context_window
            .trim()
            .parse()
            .ok()
            .filter(|w| *w >= MIN_CONTEXT_WINDOW)
            .ok_or_else(|| format!("The context window is a number of tokens, at least {MIN_CONTEXT_WINDOW}."))?;
        Ok(ConfigurationFields {
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            model: model.to_owned(),
            api_key_env: api_key_env.to_owned(),
            context_window,
            price_prompt_per_mtok: price(&self.price_prompt_per_mtok)?,
            price_completion_per_mtok: price(&self.price_completion_per_mtok)?,
        })
    }
}

fn price(raw: &str) -> Result<Option<f64>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && *p >= 0.0)
        .map(Some)
        .ok_or_else(|| "Prices are numbers ≥ 0 per million tokens (or empty when unknown).".into())
}

/// A cost for people, without a currency: "—" when unknown, four decimals below 1, two above.
pub fn format_cost(cost: Option<f64>) -> String {
    match cost {
        None => "—".to_owned(),
        Some(c) if c < 1.0 => format!("{c:.4}"),
        Some(c) => format!("{c:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_estimated_as_characters_over_four() {
        assert_eq!(estimate_tokens(0), 0);
        assert_eq!(estimate_tokens(4), 1);
        assert_eq!(estimate_tokens(5), 2, "rounded up");
        assert_eq!(estimate_tokens(400_000), 100_000);
    }

    #[test]
    fn a_window_keeps_room_for_the_prompt_and_the_answer() {
        assert_eq!(document_tokens(128_000), 124_000);
        assert_eq!(document_tokens(1_000), 500, "at most half the window is reserved");
        let entry = ModelEntry { context_window: Some(1_000), ..ModelEntry::default_entry(&LlmConfig::default()) };
        assert_eq!(entry.document_chars(400_000), 2_000);
        assert_eq!(entry.document_chars(1_000), 1_000, "the application's limit still holds");
        assert!(entry.context_flag(2_000, true).is_none());
        let flag = entry.context_flag(2_004, true).expect("too large");
        assert!(flag.contains("about 501 tokens") && flag.contains("1000 tokens"), "{flag}");
        assert!(entry.context_flag(1_000, false).unwrap().contains("more than 250 tokens"));
        let default = ModelEntry::default_entry(&LlmConfig::default());
        assert!(default.context_flag(10_000_000, false).is_none(), "the default entry has its own note");
    }

    #[test]
    fn choices_parse_from_forms() {
        assert_eq!(ModelChoice::parse(""), Ok(ModelChoice::Default));
        assert_eq!(ModelChoice::parse("default"), Ok(ModelChoice::Default));
        assert_eq!(ModelChoice::parse(" 7 "), Ok(ModelChoice::Configuration(7)));
        assert!(ModelChoice::parse("gpt-4o").is_err());
        assert_eq!(ModelChoice::Configuration(7).form_value(), "7");
        assert_eq!(ModelChoice::Default.form_value(), "default");
    }

    #[test]
    fn costs_show_without_a_currency() {
        assert_eq!(format_cost(None), "—");
        assert_eq!(format_cost(Some(0.0123456)), "0.0123");
        assert_eq!(format_cost(Some(12.345)), "12.35");
    }

    #[test]
    fn configuration_forms_refuse_a_key_in_place_of_its_name() {
        let form = ConfigurationForm {
            name: "Large".into(),
            base_url: "https://api.example.org/v1/".into(),
            model: "gpt-4o".into(),
            api_key_env: "TOXTEMP_LLM_KEY_OPENAI".into(),
            context_window: "128000".into(),
            price_prompt_per_mtok: "2.5".into(),
            price_completion_per_mtok: "".into(),
        };
        let fields = form.parse().unwrap();
        assert_eq!(fields.base_url, "https://api.example.org/v1");
        assert_eq!((fields.price_prompt_per_mtok, fields.price_completion_per_mtok), (Some(2.5), None));
        let key = ConfigurationForm { api_key_env: "sk-proj-abc123".into(), ..form.clone() };
        assert!(key.parse().unwrap_err().contains("NAME"));
        assert!(ConfigurationForm { base_url: "ftp://x".into(), ..form.clone() }.parse().is_err());
        assert!(ConfigurationForm { context_window: "10".into(), ..form.clone() }.parse().is_err());
        assert!(ConfigurationForm { price_prompt_per_mtok: "-1".into(), ..form.clone() }.parse().is_err());
        assert!(ConfigurationForm { name: "default".into(), ..form }.parse().is_err());
    }
}
