use diesel::prelude::*;
use toxtemp::db::models::QuestionSet;
use toxtemp::db::schema::question_context_subsections;
use toxtemp::questions::{self, TOXTEMP_V1_JSON};

use crate::helpers::EmptyDb;

#[test]
fn the_toxtemp_template_has_11_sections_70_subsections_and_77_questions() {
    let mut db = EmptyDb::new();
    let conn = &mut db.conn;
    let summary = questions::import(conn, TOXTEMP_V1_JSON, "v1", "ToxTemp v1").unwrap();
    assert_eq!((summary.sections, summary.subsections, summary.questions), (11, 70, 77));

    let set = QuestionSet::find_by_label(conn, "v1").unwrap().unwrap();
    assert_eq!(set.reference, "Krebs et al. ALTEX 36(4), 2019, 685-692");
    assert_eq!(QuestionSet::sections(conn, set.id).unwrap().len(), 11);
    assert_eq!(QuestionSet::subsections(conn, set.id).unwrap().len(), 70);
    let questions = QuestionSet::questions(conn, set.id).unwrap();
    assert_eq!(questions.len(), 77);
    assert_eq!(questions.iter().filter(|q| q.parent_id.is_some()).count(), 7, "the abstract's sub-questions");
    assert!(questions.iter().any(|q| q.answering_round == 3));
    let links: i64 = question_context_subsections::table.count().get_result(conn).unwrap();
    assert!(links >= 7, "context subsections are linked ({links})");
}

#[test]
fn importing_the_same_label_twice_is_refused_and_writes_nothing() {
    let mut db = EmptyDb::new();
    let conn = &mut db.conn;
    questions::import(conn, TOXTEMP_V1_JSON, "v1", "ToxTemp v1").unwrap();
    let err = questions::import(conn, TOXTEMP_V1_JSON, "v1", "again").unwrap_err();
    assert_eq!(err.to_string(), "a question set labelled \"v1\" is already loaded; choose another label");
    assert_eq!(QuestionSet::all(conn).unwrap().len(), 1);
}

#[test]
fn a_broken_template_is_refused_whole() {
    let mut db = EmptyDb::new();
    let conn = &mut db.conn;
    let json = r#"{"sections":[{"title":"1","subsections":[{"title":"1.1 A","question":"Q?","subsections_for_context_title":"7.7 Nowhere"}]}]}"#;
    let err = questions::import(conn, json, "bad", "bad").unwrap_err();
    assert!(err.to_string().contains("7.7 Nowhere"), "{err}");
    assert!(QuestionSet::all(conn).unwrap().is_empty(), "rolled back");
    assert!(questions::import(conn, "not json", "x", "x").is_err());
}
