//! The seed plan's file operations, as plain functions testable without HTTP:
//! hashing, streaming upload into storage, linking files to answers, orphan detection and
//! cleanup, and the streamed ZIP of an assay's files.

mod cleanup;
mod link;
mod upload;
mod withdraw;
mod zip;

pub use cleanup::{CleanupReport, delete_orphaned_file_assets, get_orphaned_file_assets};
pub use link::link_files_to_answer;
pub use upload::{UploadError, UploadMeta, compute_sha256, storable_filename, upload_file};
pub use withdraw::{assay_file_assets, linked_file_ids, withdraw_consent};
pub use zip::{AssayZip, ZipEntry, download_assay_files, safe_entry_name, stream_assay_zip, write_assay_zip};
