//! Integration tests through the real HTTP app and a real database: a fresh SQLite file per
//! test, or a fresh schema on PostgreSQL when TEST_DATABASE_URL is set (see `.ci/run`).

mod helpers;
mod smtp;

mod accounts;
mod admin;
mod answer_page;
mod answers;
mod auth;
mod benchmark;
mod cli;
mod docs;
mod evidence;
mod exports;
mod fileops;
mod hardening;
mod ingest;
mod investigations;
mod models;
mod models_choice;
mod offline_quality;
mod ops;
mod pipeline;
mod questions;
mod s3;
mod start;
mod storage;
mod verify;
mod workspaces;
