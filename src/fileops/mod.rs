//! The seed plan's file operations, as plain functions testable without HTTP:
//! hashing, streaming upload into storage, linking files to answers, orphan detection and
//! cleanup (the `FileAssetManager` role), consent withdrawal, and the streamed ZIP of an
//! assay's files.

mod cleanup;
mod link;
mod upload;
mod verify;
mod withdraw;
mod zip;

pub use cleanup::{
    CleanupReport, CleanupRun, FileAssetManager, delete_orphaned_file_assets, forget_deleted_names,
    get_orphaned_file_assets,
};
pub use link::link_files_to_answer;
pub use upload::{UploadError, UploadMeta, compute_sha256, discard, upload_file};
pub use verify::{Finding, FindingKind, StorageCheck, Verification, VerifyOptions, verify_storage};
pub use withdraw::{KeptFile, Withdrawal, Withdrawn, kept_files, may_withdraw_file, withdraw, withdraw_consent};
pub use zip::{AssayZip, OnStreamed, ZipEntry, ZipLink, csv_row, plan_assay_zip, stream_assay_zip, write_assay_zip};
