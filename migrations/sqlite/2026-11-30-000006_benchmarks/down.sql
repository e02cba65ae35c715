DROP TABLE evaluation_answers;
DROP TABLE evaluation_runs;
DROP TABLE benchmark_gold;
DROP TABLE benchmark_item_files;
DROP TABLE benchmark_items;
DROP TABLE benchmark_sets;
