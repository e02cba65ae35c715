DROP TABLE storage_checks;
DROP TABLE cleanup_runs;
