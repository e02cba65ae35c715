//! ToxTempAssistant: toxicologists upload the documents they have about an in-vitro test
//! method, an LLM drafts the answers of the ToxTemp template from them, and the user edits,
//! accepts and exports the result.
//!
//! Layout: `config` (environment), `db` (schema, models, migrations), `auth` (passwords),
//! `questions` (question-set import), `web` (routes, handlers, templates glue), `cli`.

pub mod admin;
pub mod answers;
pub mod auth;
pub mod bench;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod db;
pub mod fileops;
pub mod ingest;
pub mod jobs;
pub mod llm;
pub mod process;
pub mod questions;
pub mod server;
pub mod storage;
pub mod submission;
pub mod telemetry;
pub mod web;
