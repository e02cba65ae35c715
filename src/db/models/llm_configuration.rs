//! Language-model configurations kept by staff: an OpenAI-compatible endpoint, a model, the
//! NAME of the environment variable that holds its API key (never the key), its context
//! window and prices. Configurations are never deleted — drafting runs refer to them — only
//! disabled.

use diesel::prelude::*;

use crate::db::schema::llm_configurations;
use crate::db::{DbConn, now};

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = llm_configurations)]
pub struct LlmConfiguration {
    pub id: i32,
    pub name: String,
    /// Without a trailing slash, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key; empty: no key is sent.
    pub api_key_env: String,
    /// Tokens the model reads at once (prompt and answer included).
    pub context_window: i32,
    /// Price per million input tokens, when known (any currency; shown without a symbol).
    pub price_prompt_per_mtok: Option<f64>,
    /// Price per million output tokens, when known.
    pub price_completion_per_mtok: Option<f64>,
    pub enabled: bool,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
}

/// The fields staff set, already checked (see `drafting::choice::ConfigurationForm`).
#[derive(Clone, Debug, PartialEq, AsChangeset, Insertable)]
#[diesel(table_name = llm_configurations)]
pub struct ConfigurationFields {
    pub name: String,
    pub base_url: String,
    pub model: String,
    pub api_key_env: String,
    pub context_window: i32,
    #[diesel(treat_none_as_null = true)]
    pub price_prompt_per_mtok: Option<f64>,
    #[diesel(treat_none_as_null = true)]
    pub price_completion_per_mtok: Option<f64>,
}

impl LlmConfiguration {
    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<LlmConfiguration>> {
        llm_configurations::table.order(llm_configurations::name).select(Self::as_select()).load(conn)
    }

    pub fn enabled(conn: &mut DbConn) -> QueryResult<Vec<LlmConfiguration>> {
        llm_configurations::table
            .filter(llm_configurations::enabled.eq(true))
            .order(llm_configurations::name)
            .select(Self::as_select())
            .load(conn)
    }

    pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<LlmConfiguration> {
        llm_configurations::table.find(id).select(Self::as_select()).first(conn)
    }

    /// Another configuration with this name (names are unique, compared case-insensitively).
    pub fn name_taken(conn: &mut DbConn, name: &str, except: Option<i32>) -> QueryResult<bool> {
        let lower = name.to_lowercase();
        Ok(Self::all(conn)?.iter().any(|c| c.name.to_lowercase() == lower && Some(c.id) != except))
    }

    pub fn create(conn: &mut DbConn, fields: &ConfigurationFields) -> QueryResult<LlmConfiguration> {
        diesel::insert_into(llm_configurations::table)
            .values((
                fields,
                llm_configurations::enabled.eq(true),
                llm_configurations::created_at.eq(now()),
                llm_configurations::updated_at.eq(now()),
            ))
            .get_result(conn)
    }

    pub fn update(conn: &mut DbConn, id: i32, fields: &ConfigurationFields) -> QueryResult<usize> {
        diesel::update(llm_configurations::table.find(id))
            .set((fields, llm_configurations::updated_at.eq(now())))
            .execute(conn)
    }

    pub fn set_enabled(conn: &mut DbConn, id: i32, enabled: bool) -> QueryResult<usize> {
        diesel::update(llm_configurations::table.find(id))
            .set((llm_configurations::enabled.eq(enabled), llm_configurations::updated_at.eq(now())))
            .execute(conn)
    }
}
