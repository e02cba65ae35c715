//! Parsing of the small create/edit forms into typed values (parse, don't validate), and the
//! shared page that renders a title + description form.

use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::page::Page;
use super::viewer::Viewer;

pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 20_000;

/// A title + description as typed in a form.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TitleForm {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
}

/// A title + description that passed the checks: trimmed, non-empty, within limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Titled {
    pub title: String,
    pub description: String,
}

impl TitleForm {
    pub fn parse(&self) -> Result<Titled, String> {
        let title = self.title.trim();
        let description = self.description.trim();
        if title.is_empty() {
            return Err("Please give a title.".into());
        }
        if title.chars().count() > MAX_TITLE {
            return Err(format!("The title may have at most {MAX_TITLE} characters."));
        }
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(format!("The description may have at most {MAX_DESCRIPTION} characters."));
        }
        if title.chars().any(char::is_control) {
            return Err("The title may not contain control characters.".into());
        }
        Ok(Titled { title: title.to_owned(), description: description.to_owned() })
    }
}

/// Where a create/edit form posts to and returns to, and its heading.
pub struct FormTarget {
    pub heading: String,
    pub action: String,
    pub cancel: String,
}

impl FormTarget {
    pub fn new(heading: impl Into<String>, action: impl Into<String>, cancel: impl Into<String>) -> Self {
        Self { heading: heading.into(), action: action.into(), cancel: cancel.into() }
    }

    /// The title + description form for this target.
    pub fn entity_page(
        self,
        viewer: &Viewer,
        form: TitleForm,
        error: Option<String>,
        description_help: &'static str,
    ) -> EntityFormPage {
        EntityFormPage { page: viewer.page(), target: self, form, error, description_help }
    }

    /// The submitted title + description, or this form again with the reason.
    pub fn parse(
        self,
        viewer: &Viewer,
        form: TitleForm,
        description_help: &'static str,
    ) -> Result<Titled, Box<EntityFormPage>> {
        form.parse().map_err(|msg| Box::new(self.entity_page(viewer, form, Some(msg), description_help)))
    }
}

/// The create/edit page for investigations and studies.
#[derive(Template, WebTemplate)]
#[template(path = "entity_form.html")]
pub struct EntityFormPage {
    pub page: Page,
    pub target: FormTarget,
    pub form: TitleForm,
    pub error: Option<String>,
    pub description_help: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_required() {
        let ok = TitleForm { title: "  Neurite outgrowth ".into(), description: " x ".into() };
        assert_eq!(ok.parse().unwrap(), Titled { title: "Neurite outgrowth".into(), description: "x".into() });
        assert!(TitleForm { title: "   ".into(), ..Default::default() }.parse().is_err());
        assert!(TitleForm { title: "a".repeat(MAX_TITLE + 1), ..Default::default() }.parse().is_err());
        assert!(TitleForm { title: "a\u{0}b".into(), ..Default::default() }.parse().is_err());
    }
}
