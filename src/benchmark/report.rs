//! What a run measured: per question, per section and overall ([`Summary`]), runs side by
//! side, and the per-question results as CSV and JSON.
//!
//! Aggregates (answers the model failed to give count as asked, never as answered, and are
//! left out of every quality figure):
//! - **completeness** = answered (not abstaining) / questions asked;
//! - **abstention agreement** = questions where the answer abstains exactly when the gold
//!   answer does / questions with a gold answer;
//! - **specificity** = answers that abstain / questions whose gold answer abstains (on an
//!   out-of-scope set, every question);
//! - **token F1**, **ROUGE-L**, **cosine**: means over the questions where both the answer and
//!   the gold answer say something; **cosine ≥ 0.6 / ≥ 0.7**: the share of those at or above;
//! - **citation verification** = verified citations / citations;
//! - **cited-file agreement**: mean over the questions whose gold answer cites documents.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use super::CitationRecord;
use crate::db::DbConn;
use crate::db::models::{BenchmarkItem, BenchmarkSet, EvaluationAnswer, EvaluationRun, QuestionSet};
use crate::fileops::csv_row;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub questions: usize,
    pub failed: usize,
    pub answered: usize,
    pub completeness: Option<f64>,
    pub with_gold: usize,
    pub abstention_agreement: Option<f64>,
    pub negatives: usize,
    pub specificity: Option<f64>,
    pub compared: usize,
    pub token_f1: Option<f64>,
    pub rouge_l: Option<f64>,
    pub citations: i64,
    pub verified_citations: i64,
    pub citation_verification: Option<f64>,
    pub cited_file_agreement: Option<f64>,
    pub cosine: Option<f64>,
    pub cosine_at_0_6: Option<f64>,
    pub cosine_at_0_7: Option<f64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

impl Summary {
    pub fn of<'a>(answers: impl IntoIterator<Item = &'a EvaluationAnswer>) -> Self {
        let mut s = Summary::default();
        let (mut agree, mut negatives_abstained) = (0, 0);
        let (mut f1, mut rouge, mut cosine, mut files) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for a in answers {
            s.questions += 1;
            s.prompt_tokens += a.prompt_tokens;
            s.completion_tokens += a.completion_tokens;
            if a.failed {
                s.failed += 1;
                continue;
            }
            s.answered += usize::from(!a.abstained);
            s.citations += i64::from(a.citations);
            s.verified_citations += i64::from(a.verified_citations);
            if let Some(gold_abstained) = a.gold_abstained {
                s.with_gold += 1;
                agree += usize::from(a.abstained == gold_abstained);
                if gold_abstained {
                    s.negatives += 1;
                    negatives_abstained += usize::from(a.abstained);
                }
            }
            f1.extend(a.token_f1);
            rouge.extend(a.rouge_l);
            cosine.extend(a.cosine);
            files.extend(a.cited_file_agreement);
        }
        s.completeness = share(s.answered, s.questions);
        s.abstention_agreement = share(agree, s.with_gold);
        s.specificity = share(negatives_abstained, s.negatives);
        s.compared = f1.len();
        s.token_f1 = mean(&f1);
        s.rouge_l = mean(&rouge);
        s.citation_verification = share(s.verified_citations as usize, s.citations as usize);
        s.cited_file_agreement = mean(&files);
        s.cosine = mean(&cosine);
        s.cosine_at_0_6 = share(cosine.iter().filter(|c| **c >= 0.6).count(), cosine.len());
        s.cosine_at_0_7 = share(cosine.iter().filter(|c| **c >= 0.7).count(), cosine.len());
        s
    }
}

/// Where a question sits in its template.
#[derive(Clone, Debug, Serialize)]
pub struct QuestionPlace {
    pub question_id: i32,
    pub section: String,
    pub subsection: String,
    pub question: String,
}

/// The questions of a question set in template order, with their section and subsection.
pub fn places(conn: &mut DbConn, question_set_id: i32) -> QueryResult<Vec<QuestionPlace>> {
    let sections: HashMap<i32, String> =
        QuestionSet::sections(conn, question_set_id)?.into_iter().map(|s| (s.id, s.title)).collect();
    let subsections: HashMap<i32, (String, String)> = QuestionSet::subsections(conn, question_set_id)?
        .into_iter()
        .map(|s| (s.id, (sections.get(&s.section_id).cloned().unwrap_or_default(), s.title)))
        .collect();
    Ok(QuestionSet::questions(conn, question_set_id)?
        .into_iter()
        .map(|q| {
            let (section, subsection) = subsections.get(&q.subsection_id).cloned().unwrap_or_default();
            QuestionPlace { question_id: q.id, section, subsection, question: q.text }
        })
        .collect())
}

/// One question of one case in a run.
#[derive(Clone, Debug)]
pub struct ResultRow {
    pub item_id: i32,
    pub case: String,
    pub place: QuestionPlace,
    pub gold: Option<String>,
    pub answer: EvaluationAnswer,
    pub evidence: Vec<CitationRecord>,
}

#[derive(Clone, Debug)]
pub struct RunReport {
    pub run: EvaluationRun,
    pub set: BenchmarkSet,
    pub overall: Summary,
    /// (section title, its summary), in template order.
    pub sections: Vec<(String, Summary)>,
    /// Case by case, in template order.
    pub rows: Vec<ResultRow>,
}

pub fn run_report(conn: &mut DbConn, run_id: i32) -> QueryResult<RunReport> {
    let run = EvaluationRun::find(conn, run_id)?;
    let set = BenchmarkSet::find(conn, run.set_id)?;
    let places = places(conn, set.question_set_id)?;
    let order: HashMap<i32, usize> = places.iter().enumerate().map(|(i, p)| (p.question_id, i)).collect();
    let items: HashMap<i32, BenchmarkItem> =
        BenchmarkSet::items(conn, set.id)?.into_iter().map(|i| (i.id, i)).collect();
    let mut gold: HashMap<(i32, i32), String> = HashMap::new();
    for item in items.values() {
        for g in BenchmarkItem::gold(conn, item.id)? {
            gold.insert((g.item_id, g.question_id), g.text);
        }
    }
    let mut answers = EvaluationAnswer::of_run(conn, run_id)?;
    answers.sort_by_key(|a| {
        (
            items.get(&a.item_id).map_or(i32::MAX, |i| i.position),
            order.get(&a.question_id).copied().unwrap_or(usize::MAX),
        )
    });
    let overall = Summary::of(&answers);
    let mut section_titles: Vec<String> = Vec::new();
    for p in &places {
        if !section_titles.contains(&p.section) {
            section_titles.push(p.section.clone());
        }
    }
    let section_of = |a: &EvaluationAnswer| order.get(&a.question_id).map(|i| places[*i].section.clone());
    let sections = section_titles
        .into_iter()
        .map(|title| {
            let summary = Summary::of(answers.iter().filter(|a| section_of(a).as_deref() == Some(title.as_str())));
            (title, summary)
        })
        .filter(|(_, s)| s.questions > 0)
        .collect();
    let rows = answers
        .into_iter()
        .filter_map(|answer| {
            let place = places.get(*order.get(&answer.question_id)?)?.clone();
            Some(ResultRow {
                item_id: answer.item_id,
                case: items.get(&answer.item_id).map(|i| i.title.clone()).unwrap_or_default(),
                gold: gold.get(&(answer.item_id, answer.question_id)).cloned(),
                evidence: serde_json::from_str(&answer.evidence).unwrap_or_default(),
                place,
                answer,
            })
        })
        .collect();
    Ok(RunReport { run, set, overall, sections, rows })
}

fn number(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.4}")).unwrap_or_default()
}

fn flag(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "",
    }
}

/// One line per question of each case: what was asked, the gold and the answer, every metric.
pub fn csv(report: &RunReport) -> String {
    let mut out = csv_row(&[
        "run",
        "label",
        "case",
        "section",
        "subsection",
        "question",
        "gold",
        "answer",
        "failed",
        "abstained",
        "gold_abstained",
        "token_f1",
        "rouge_l",
        "cosine",
        "citations",
        "verified_citations",
        "cited_file_agreement",
        "prompt_tokens",
        "completion_tokens",
    ]);
    for r in &report.rows {
        let a = &r.answer;
        out.push_str(&csv_row(&[
            &report.run.id.to_string(),
            &report.run.label,
            &r.case,
            &r.place.section,
            &r.place.subsection,
            &r.place.question,
            r.gold.as_deref().unwrap_or_default(),
            &a.text,
            flag(Some(a.failed)),
            flag(Some(a.abstained)),
            flag(a.gold_abstained),
            &number(a.token_f1),
            &number(a.rouge_l),
            &number(a.cosine),
            &a.citations.to_string(),
            &a.verified_citations.to_string(),
            &number(a.cited_file_agreement),
            &a.prompt_tokens.to_string(),
            &a.completion_tokens.to_string(),
        ]));
    }
    out
}

/// The run, its summaries and every question's result, as one JSON document.
pub fn json(report: &RunReport) -> serde_json::Value {
    let run = &report.run;
    serde_json::json!({
        "format": "toxtemp-assistant-evaluation/1",
        "run": {
            "id": run.id,
            "label": run.label,
            "set": { "id": report.set.id, "name": report.set.name, "out_of_scope": report.set.out_of_scope },
            "provider": { "base_url": run.base_url, "model": run.model },
            "prompt_version": run.prompt_version,
            "concurrency": run.concurrency,
            "status": run.status,
            "notes": run.notes(),
            "started_at": run.started_at.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            "finished_at": run.finished_at.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            "wall_seconds": run.wall_seconds(),
            "tokens": { "prompt": run.prompt_tokens, "completion": run.completion_tokens },
            "cost_usd": run.cost(),
        },
        "overall": report.overall,
        "sections": report.sections.iter().map(|(title, s)| serde_json::json!({ "section": title, "summary": s })).collect::<Vec<_>>(),
        "questions": report.rows.iter().map(|r| serde_json::json!({
            "case": r.case,
            "question_id": r.place.question_id,
            "section": r.place.section,
            "subsection": r.place.subsection,
            "question": r.place.question,
            "gold": r.gold,
            "answer": r.answer.text,
            "failed": r.answer.failed,
            "abstained": r.answer.abstained,
            "gold_abstained": r.answer.gold_abstained,
            "token_f1": r.answer.token_f1,
            "rouge_l": r.answer.rouge_l,
            "cosine": r.answer.cosine,
            "citations": r.answer.citations,
            "verified_citations": r.answer.verified_citations,
            "cited_file_agreement": r.answer.cited_file_agreement,
            "evidence": r.evidence,
            "tokens": { "prompt": r.answer.prompt_tokens, "completion": r.answer.completion_tokens },
        })).collect::<Vec<_>>(),
    })
}

/// Runs of one set, side by side.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub set: BenchmarkSet,
    pub reports: Vec<RunReport>,
    /// Every section any of the runs has, in template order.
    pub sections: Vec<String>,
}

impl Comparison {
    /// A section's summary in each run (None where a run has none).
    pub fn section(&self, title: &str) -> Vec<Option<&Summary>> {
        self.reports.iter().map(|r| r.sections.iter().find(|(t, _)| t == title).map(|(_, s)| s)).collect()
    }
}

/// The runs (of one set, in the order given); runs of another set are refused with `NotFound`.
pub fn compare(conn: &mut DbConn, set_id: i32, run_ids: &[i32]) -> QueryResult<Comparison> {
    let set = BenchmarkSet::find(conn, set_id)?;
    let mut reports = Vec::new();
    for id in run_ids {
        let report = run_report(conn, *id)?;
        if report.run.set_id != set_id {
            return Err(diesel::result::Error::NotFound);
        }
        reports.push(report);
    }
    let mut sections = Vec::new();
    for place in places(conn, set.question_set_id)? {
        if !sections.contains(&place.section)
            && reports.iter().any(|r| r.sections.iter().any(|(t, _)| *t == place.section))
        {
            sections.push(place.section);
        }
    }
    Ok(Comparison { set, reports, sections })
}

/// One question of one case across runs: the gold answer and each run's answer.
pub struct QuestionAcrossRuns<'a> {
    pub place: &'a QuestionPlace,
    pub case: &'a str,
    pub gold: Option<&'a str>,
    pub answers: Vec<(&'a EvaluationRun, Option<&'a ResultRow>)>,
}

impl Comparison {
    pub fn question(&self, item_id: i32, question_id: i32) -> Option<QuestionAcrossRuns<'_>> {
        let first = self
            .reports
            .iter()
            .flat_map(|r| &r.rows)
            .find(|row| row.item_id == item_id && row.place.question_id == question_id)?;
        Some(QuestionAcrossRuns {
            place: &first.place,
            case: &first.case,
            gold: first.gold.as_deref(),
            answers: self
                .reports
                .iter()
                .map(|r| {
                    let row = r.rows.iter().find(|row| row.item_id == item_id && row.place.question_id == question_id);
                    (&r.run, row)
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(failed: bool, abstained: bool, gold_abstained: Option<bool>, f1: Option<f64>) -> EvaluationAnswer {
        EvaluationAnswer {
            id: 0,
            run_id: 1,
            item_id: 1,
            question_id: 1,
            text: String::new(),
            evidence: "[]".into(),
            failed,
            abstained,
            gold_abstained,
            token_f1: f1,
            rouge_l: f1,
            cosine: f1,
            citations: 2,
            verified_citations: 1,
            cited_file_agreement: None,
            prompt_tokens: 10,
            completion_tokens: 1,
        }
    }

    #[test]
    fn summaries_follow_their_documented_definitions() {
        let answers = [
            answer(false, false, Some(false), Some(0.5)), // answered, agrees, compared
            answer(false, false, Some(true), None),       // answered where gold abstains: disagrees, a false positive
            answer(false, true, Some(true), None),        // abstains with gold: agrees, a true negative
            answer(false, true, None, None),              // abstains, no gold
            answer(true, false, Some(false), None),       // failed: asked, never answered, in no quality figure
        ];
        let s = Summary::of(&answers);
        assert_eq!((s.questions, s.failed, s.answered, s.with_gold, s.negatives), (5, 1, 2, 3, 2));
        assert_eq!(s.completeness, Some(2.0 / 5.0));
        assert_eq!(s.abstention_agreement, Some(2.0 / 3.0));
        assert_eq!(s.specificity, Some(1.0 / 2.0));
        assert_eq!((s.compared, s.token_f1), (1, Some(0.5)));
        assert_eq!((s.citations, s.verified_citations, s.citation_verification), (8, 4, Some(0.5)));
        assert_eq!((s.cosine_at_0_6, s.cosine_at_0_7), (Some(0.0), Some(0.0)));
        assert_eq!((s.prompt_tokens, s.completion_tokens), (50, 5));
        assert_eq!(Summary::of(&[]).completeness, None);
    }
}
