//! Assays: one in-vitro test method described in the ToxTemp template.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::db::schema::{answers, assays, investigations, questions, sections, studies, subsections};
use crate::db::{DbConn, now};

use super::{Investigation, Person, Study};

/// Where an assay is in its drafting life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssayStatus {
    None,
    Scheduled,
    Busy,
    Done,
    Error,
}

impl AssayStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Scheduled => "scheduled",
            Self::Busy => "busy",
            Self::Done => "done",
            Self::Error => "error",
        }
    }

    /// A run is scheduled or drafting.
    pub fn is_running(self) -> bool {
        matches!(self, Self::Scheduled | Self::Busy)
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::None => "not started",
            Self::Scheduled => "scheduled",
            Self::Busy => "drafting answers",
            Self::Done => "done",
            Self::Error => "failed",
        }
    }
}

impl FromStr for AssayStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "none" => Self::None,
            "scheduled" => Self::Scheduled,
            "busy" => Self::Busy,
            "done" => Self::Done,
            "error" => Self::Error,
            other => return Err(format!("unknown assay status {other:?}")),
        })
    }
}

impl fmt::Display for AssayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = assays)]
pub struct Assay {
    pub id: i32,
    pub study_id: i32,
    pub question_set_id: Option<i32>,
    pub title: String,
    pub description: String,
    pub status: String,
    pub alerts: String,
    pub processing_log: String,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// When consent to keep its documents was last withdrawn (new uploads then start unticked).
    pub consent_withdrawn_at: Option<chrono::NaiveDateTime>,
}

/// An assay as listed on the overview.
#[derive(Clone, Debug)]
pub struct AssaySummary {
    pub assay: Assay,
    pub study_title: String,
    pub investigation_title: String,
    pub accepted: i64,
    pub drafted: i64,
    pub total: i64,
}

/// A part of the Investigation → Study → Assay tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Within {
    Study(i32),
    Investigation(i32),
    /// Everything a person owns.
    Owner(i32),
}

/// What became of an edit of the assay form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    Saved,
    /// The question set was to change while answers (or a run) depend on it: nothing saved.
    QuestionSetLocked,
}

/// Fields a person edits.
pub struct AssayFields<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub question_set_id: Option<i32>,
}

impl Assay {
    pub fn status(&self) -> AssayStatus {
        self.status.parse().unwrap_or(AssayStatus::Error)
    }

    /// User-visible alerts (a JSON array in the database).
    pub fn alerts(&self) -> Vec<String> {
        serde_json::from_str(&self.alerts).unwrap_or_default()
    }

    /// The assay, its study and investigation, if `viewer` may see them (else NotFound).
    pub fn find_for(conn: &mut DbConn, id: i32, viewer: &Person) -> QueryResult<(Assay, Study, Investigation)> {
        let assay = Self::find(conn, id)?;
        let (study, inv) = Study::find_for(conn, assay.study_id, viewer)?;
        Ok((assay, study, inv))
    }

    pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<Assay> {
        assays::table.find(id).select(Self::as_select()).first(conn)
    }

    pub fn of_study(conn: &mut DbConn, study_id: i32) -> QueryResult<Vec<Assay>> {
        assays::table.filter(assays::study_id.eq(study_id)).order(assays::id).select(Self::as_select()).load(conn)
    }

    pub fn create(conn: &mut DbConn, study_id: i32, fields: &AssayFields<'_>) -> QueryResult<Assay> {
        let at = now();
        diesel::insert_into(assays::table)
            .values((
                assays::study_id.eq(study_id),
                assays::title.eq(fields.title),
                assays::description.eq(fields.description),
                assays::question_set_id.eq(fields.question_set_id),
                assays::status.eq(AssayStatus::None.as_str()),
                assays::created_at.eq(at),
                assays::updated_at.eq(at),
            ))
            .get_result(conn)
    }

    pub fn update(conn: &mut DbConn, id: i32, fields: &AssayFields<'_>) -> QueryResult<usize> {
        diesel::update(assays::table.find(id))
            .set((
                assays::title.eq(fields.title),
                assays::description.eq(fields.description),
                assays::question_set_id.eq(fields.question_set_id),
                assays::updated_at.eq(now()),
            ))
            .execute(conn)
    }

    /// Save the assay form, unless it would change the question set of an assay that has
    /// answers or a run in progress: those answers (and the run's questions) belong to the set
    /// they were drafted for.
    pub fn edit(conn: &mut DbConn, id: i32, fields: &AssayFields<'_>) -> QueryResult<Edit> {
        crate::db::write_transaction(conn, |c| {
            Self::lock(c, &[id])?;
            let current = Self::find(c, id)?;
            if current.question_set_id != fields.question_set_id && Self::question_set_locked(c, &current)? {
                return Ok(Edit::QuestionSetLocked);
            }
            Self::update(c, id, fields)?;
            Ok(Edit::Saved)
        })
    }

    /// Whether the question set can still be changed (no answers, no run in progress).
    pub fn question_set_locked(conn: &mut DbConn, assay: &Assay) -> QueryResult<bool> {
        let answered = diesel::select(diesel::dsl::exists(answers::table.filter(answers::assay_id.eq(assay.id))))
            .get_result::<bool>(conn)?;
        Ok(answered || assay.status().is_running())
    }

    pub fn set_status(conn: &mut DbConn, id: i32, status: AssayStatus) -> QueryResult<usize> {
        diesel::update(assays::table.find(id))
            .set((assays::status.eq(status.as_str()), assays::updated_at.eq(now())))
            .execute(conn)
    }

    /// Append a user-visible alert, keeping the ones already there.
    pub fn push_alert(conn: &mut DbConn, id: i32, message: &str) -> QueryResult<usize> {
        let assay = Self::find(conn, id)?;
        let mut alerts = assay.alerts();
        alerts.push(message.to_owned());
        let json = serde_json::to_string(&alerts).unwrap_or_else(|_| "[]".into());
        diesel::update(assays::table.find(id)).set(assays::alerts.eq(json)).execute(conn)
    }

    /// Start a new run's alerts (the warnings of its submission).
    pub fn replace_alerts(conn: &mut DbConn, id: i32, alerts: &[String]) -> QueryResult<usize> {
        let json = serde_json::to_string(alerts).unwrap_or_else(|_| "[]".into());
        diesel::update(assays::table.find(id)).set(assays::alerts.eq(json)).execute(conn)
    }

    /// Deletes the row and its answers (cascade). To delete an assay as a person does, with
    /// its queued work, use `crate::deletion`.
    pub fn delete(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
        diesel::delete(assays::table.find(id)).execute(conn)
    }

    /// The ids of the assays below a study or an investigation.
    pub fn ids_in(conn: &mut DbConn, within: Within) -> QueryResult<Vec<i32>> {
        match within {
            Within::Study(id) => assays::table.filter(assays::study_id.eq(id)).select(assays::id).load(conn),
            Within::Investigation(id) => assays::table
                .inner_join(studies::table)
                .filter(studies::investigation_id.eq(id))
                .select(assays::id)
                .load(conn),
            Within::Owner(id) => assays::table
                .inner_join(studies::table.inner_join(investigations::table))
                .filter(investigations::owner_id.eq(id))
                .select(assays::id)
                .load(conn),
        }
    }

    /// The person who owns the assay (through its study and investigation).
    pub fn owner(conn: &mut DbConn, id: i32) -> QueryResult<Person> {
        use crate::db::schema::persons;
        assays::table
            .inner_join(studies::table.inner_join(investigations::table.inner_join(persons::table)))
            .filter(assays::id.eq(id))
            .select(Person::as_select())
            .first(conn)
    }

    /// Take the row locks of these assays (an UPDATE that changes nothing), in id order, and
    /// return those that exist. Whoever writes answers or deletes an assay locks its row
    /// first, so the two never deadlock on the rows below it.
    pub fn lock(conn: &mut DbConn, ids: &[i32]) -> QueryResult<Vec<i32>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        let mut locked = Vec::new();
        for id in ids {
            if diesel::update(assays::table.find(id)).set(assays::id.eq(assays::id)).execute(conn)? == 1 {
                locked.push(id);
            }
        }
        Ok(locked)
    }

    pub fn record_consent_withdrawal(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
        diesel::update(assays::table.find(id)).set(assays::consent_withdrawn_at.eq(Some(now()))).execute(conn)
    }

    pub fn exists(conn: &mut DbConn, id: i32) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(assays::table.find(id))).get_result(conn)
    }

    /// Append a line to the internal processing log (staff only).
    pub fn log(conn: &mut DbConn, id: i32, line: &str) -> QueryResult<usize> {
        let Some(current) = assays::table.find(id).select(assays::processing_log).first::<String>(conn).optional()?
        else {
            return Ok(0);
        };
        let entry = format!("{current}{} {line}\n", now().format("%Y-%m-%d %H:%M:%S"));
        diesel::update(assays::table.find(id)).set(assays::processing_log.eq(entry)).execute(conn)
    }

    pub fn add_usage(conn: &mut DbConn, id: i32, prompt: i64, completion: i64) -> QueryResult<usize> {
        diesel::update(assays::table.find(id))
            .set((
                assays::prompt_tokens.eq(assays::prompt_tokens + prompt),
                assays::completion_tokens.eq(assays::completion_tokens + completion),
            ))
            .execute(conn)
    }

    /// The viewer's assays with their study, investigation and answer progress.
    pub fn overview_for(conn: &mut DbConn, owner: &Person) -> QueryResult<Vec<AssaySummary>> {
        let rows: Vec<(Assay, String, String)> = assays::table
            .inner_join(studies::table.inner_join(investigations::table))
            .filter(investigations::owner_id.eq(owner.id))
            .order(assays::id.desc())
            .select((Self::as_select(), studies::title, investigations::title))
            .load(conn)?;
        summarise(conn, rows)
    }

    /// The assays of others' investigations shared with the viewer through a workspace.
    pub fn shared_overview_for(conn: &mut DbConn, viewer: &Person) -> QueryResult<Vec<AssaySummary>> {
        let shared = super::workspace::shared_investigation_ids(conn, viewer.id)?;
        let rows: Vec<(Assay, String, String)> = assays::table
            .inner_join(studies::table.inner_join(investigations::table))
            .filter(investigations::id.eq_any(shared))
            .order(assays::id.desc())
            .select((Self::as_select(), studies::title, investigations::title))
            .load(conn)?;
        summarise(conn, rows)
    }
}

/// Assays with their answer progress.
fn summarise(conn: &mut DbConn, rows: Vec<(Assay, String, String)>) -> QueryResult<Vec<AssaySummary>> {
    let ids: Vec<i32> = rows.iter().map(|(a, _, _)| a.id).collect();
    let drafted = answer_counts(conn, &ids, false)?;
    let accepted = answer_counts(conn, &ids, true)?;
    let totals = question_totals(conn)?;
    Ok(rows
        .into_iter()
        .map(|(assay, study_title, investigation_title)| AssaySummary {
            accepted: accepted.get(&assay.id).copied().unwrap_or(0),
            drafted: drafted.get(&assay.id).copied().unwrap_or(0),
            total: assay.question_set_id.and_then(|q| totals.get(&q).copied()).unwrap_or(0),
            assay,
            study_title,
            investigation_title,
        })
        .collect())
}

/// Answers per assay: all non-empty drafts, or only accepted ones.
fn answer_counts(conn: &mut DbConn, assay_ids: &[i32], only_accepted: bool) -> QueryResult<HashMap<i32, i64>> {
    let drafted = answers::table.filter(answers::assay_id.eq_any(assay_ids)).filter(answers::text.ne(""));
    let rows: Vec<(i32, i64)> = if only_accepted {
        drafted
            .filter(answers::accepted.eq(true))
            .group_by(answers::assay_id)
            .select((answers::assay_id, count_star()))
            .load(conn)?
    } else {
        drafted.group_by(answers::assay_id).select((answers::assay_id, count_star())).load(conn)?
    };
    Ok(rows.into_iter().collect())
}

/// Number of questions in each question set.
pub fn question_totals(conn: &mut DbConn) -> QueryResult<HashMap<i32, i64>> {
    let rows: Vec<(i32, i64)> = questions::table
        .inner_join(subsections::table.inner_join(sections::table))
        .group_by(sections::question_set_id)
        .select((sections::question_set_id, count_star()))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}
