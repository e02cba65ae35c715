//! Where a submission's answers go: an existing assay, or a new one (in an existing or new
//! study, in an existing or new investigation). Checking access writes nothing; creating
//! remembers what it created, so that a failed submission can take it back again.

use diesel::prelude::*;

use crate::db::models::assay::AssayFields;
use crate::db::models::{Access, Answer, Assay, Denied, Investigation, Person, QuestionSet, Study};
use crate::db::schema::{assays, studies};
use crate::db::{DbConn, write_transaction};

use super::DraftError;

/// The assay the answers are for.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Existing(i32),
    New { investigation: NewOrId, study: NewOrId, title: String, description: String },
}

/// An existing item by id, or a new one with this title.
#[derive(Clone, Debug, PartialEq)]
pub enum NewOrId {
    Id(i32),
    New(String),
}

/// Check that `viewer` may use what the target names, and find the question set the answers
/// will follow: the one chosen, else the assay's own, else the only one there is.
pub(super) fn check(
    c: &mut DbConn,
    viewer: &Person,
    target: &Target,
    question_set_id: Option<i32>,
) -> Result<Option<i32>, DraftError> {
    let mut assay_set = None;
    // The owner and the members it is shared with upload into an existing assay; only the
    // owner adds studies and assays. Staff see everyone's work, but change none.
    let allowed = |c: &mut DbConn, inv: &Investigation, access: Access| allowed(c, viewer, inv, access);
    match target {
        Target::Existing(id) => {
            let assay = Assay::find(c, *id)?;
            let study = Study::find(c, assay.study_id)?;
            let inv = Investigation::find(c, study.investigation_id)?;
            allowed(c, &inv, Access::Contribute)?;
            assay_set = assay.question_set_id;
        }
        Target::New { investigation, study: NewOrId::Id(study_id), .. } => {
            let study = Study::find(c, *study_id)?;
            let inv = Investigation::find(c, study.investigation_id)?;
            allowed(c, &inv, Access::Own)?;
            if matches!(investigation, NewOrId::Id(inv_id) if *inv_id != inv.id) {
                return Err(DraftError::Invalid("The chosen study is not in the chosen investigation.".into()));
            }
        }
        Target::New { investigation: NewOrId::Id(id), .. } => {
            let inv = Investigation::find(c, *id)?;
            allowed(c, &inv, Access::Own)?
        }
        Target::New { .. } => {}
    }
    if let Some(id) = question_set_id {
        QuestionSet::find(c, id)?;
        return Ok(Some(id));
    }
    if assay_set.is_some() {
        return Ok(None);
    }
    match QuestionSet::all(c)?.as_slice() {
        [only] => Ok(Some(only.id)),
        _ => Err(DraftError::Invalid("Please choose a question set.".into())),
    }
}

/// The access decision, in the words of a submission: unseen work is not found.
fn allowed(c: &mut DbConn, viewer: &Person, inv: &Investigation, access: Access) -> Result<(), DraftError> {
    inv.decide(c, viewer, access)?.map_err(|denied| match denied {
        Denied::Unseen => DraftError::NotFound,
        Denied::NotAllowed => DraftError::Forbidden,
    })
}

/// What a submission created, so that a failed one can take it back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Created {
    pub investigation: Option<i32>,
    pub study: Option<i32>,
    pub assay: Option<i32>,
}

impl Created {
    pub fn anything(&self) -> bool {
        *self != Self::default()
    }

    /// Delete what was created, innermost first, each only while it is still empty — someone
    /// may have added a study to the new investigation in the meantime.
    pub fn undo(self, c: &mut DbConn) -> QueryResult<()> {
        write_transaction(c, |c| {
            if let Some(id) = self.assay
                && Answer::of_assay(c, id)?.is_empty()
            {
                super::job::forget_assays(c, &[id])?;
                Assay::delete(c, id)?;
            }
            if let Some(id) = self.study {
                let left: i64 = assays::table.filter(assays::study_id.eq(id)).count().get_result(c)?;
                if left == 0 {
                    Study::delete(c, id)?;
                }
            }
            if let Some(id) = self.investigation {
                let left: i64 = studies::table.filter(studies::investigation_id.eq(id)).count().get_result(c)?;
                if left == 0 {
                    Investigation::delete(c, id)?;
                }
            }
            Ok(())
        })
    }
}

/// Create what the target asks for (after [`check`]); returns the assay and what was made.
pub(super) fn create(
    c: &mut DbConn,
    viewer: &Person,
    target: &Target,
    question_set_id: Option<i32>,
) -> Result<(i32, Created), DraftError> {
    let Target::New { investigation, study, title, description } = target else {
        return existing(c, viewer, target, question_set_id);
    };
    write_transaction(c, |c| {
        let mut created = Created::default();
        let study_id = match study {
            NewOrId::Id(id) => *id,
            NewOrId::New(study_title) => {
                let inv_id = match investigation {
                    NewOrId::Id(id) => *id,
                    NewOrId::New(inv_title) => {
                        let id = Investigation::create(c, viewer, inv_title, "")?.id;
                        created.investigation = Some(id);
                        id
                    }
                };
                let id = Study::create(c, inv_id, study_title, "")?.id;
                created.study = Some(id);
                id
            }
        };
        let fields = AssayFields { title, description, question_set_id };
        created.assay = Some(Assay::create(c, study_id, &fields)?.id);
        Ok((created.assay.unwrap_or_default(), created))
    })
}

/// An existing assay gets the chosen question set if it had none yet.
fn existing(
    c: &mut DbConn,
    viewer: &Person,
    target: &Target,
    question_set_id: Option<i32>,
) -> Result<(i32, Created), DraftError> {
    let Target::Existing(id) = target else { return Err(DraftError::Invalid("No assay was chosen.".into())) };
    let assay = Assay::find(c, *id)?;
    let study = Study::find(c, assay.study_id)?;
    let inv = Investigation::find(c, study.investigation_id)?;
    // Checked again here, in the transaction at the end of a long upload: a membership may
    // have ended (or never allowed more than reading) meanwhile.
    allowed(c, viewer, &inv, Access::Contribute)?;
    if assay.question_set_id.is_none() && question_set_id.is_some() {
        let fields = AssayFields { title: &assay.title, description: &assay.description, question_set_id };
        Assay::update(c, assay.id, &fields)?;
    }
    Ok((assay.id, Created::default()))
}
