DROP TABLE drafting_runs;
DROP TABLE llm_configurations;
