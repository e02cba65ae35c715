DROP TABLE answer_citations;
DROP TABLE file_passages;
