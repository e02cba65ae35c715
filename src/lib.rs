//! ToxTempAssistant: toxicologists upload the documents they have about an in-vitro test
//! method, an LLM drafts the answers of the ToxTemp template from them, and the user edits,
//! accepts and exports the result.
//!
//! Layers, each importing only from those below it:
//! - `cli`, `startup` — commands and start-up (bottom of the call chain: `main`);
//! - `web` — HTTP handlers, thin: they call the use cases;
//! - `drafting`, `deletion`, `benchmark` — the use cases (what happens to an upload, what a
//!   deletion takes with it, evaluating the assistant on kept data), `workspaces` (sharing); `answers`, `admin` — read
//!   models of the pages (and of `/metrics`); `readiness` — whether this server can serve;
//! - `context` — the application context every use case gets;
//! - `fileops` (the seed's file operations), `jobs` (the generic queue), `llm` (providers),
//!   `ingest` (text extraction), `storage`, `db`, `auth`, `questions`, `mail` (SMTP);
//! - `config`, `telemetry`.

pub mod admin;
pub mod answers;
pub mod auth;
pub mod benchmark;
pub mod cli;
pub mod config;
pub mod context;
pub mod db;
pub mod deletion;
pub mod drafting;
pub mod filenames;
pub mod fileops;
pub mod ingest;
pub mod jobs;
pub mod llm;
pub mod mail;
pub mod questions;
pub mod quotes;
pub mod readiness;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod web;
pub mod workspaces;
