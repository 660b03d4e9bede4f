//! A user's glossary (`/glossary`): the names and terms their recordings
//! hold, each with the forms it is misheard as. The terms go to the API as
//! the transcription prompt where the model takes one (the diarizing model
//! refuses a prompt); the misheard forms are replaced by their term in every
//! transcript, whatever the model.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

/// The most entries a glossary holds.
pub const MAX_ENTRIES: usize = 50;
/// The most characters of one term or misheard form.
pub const MAX_TERM_CHARS: usize = 60;
/// The most characters of the prompt (the API reads about 224 tokens of it).
const MAX_PROMPT_CHARS: usize = 600;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Glossary(pub Vec<Entry>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: String,
    /// What the API writes instead, replaced by `term`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heard: Vec<String>,
}

/// Why an entry was not added; the text is the user's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlossaryError {
    #[error("empty")]
    Empty,
    #[error("too long")]
    TooLong,
    #[error("full")]
    Full,
}

impl Glossary {
    /// Adds `Term` or `Term = misheard, other misheard` (several entries
    /// apart by `;` or lines); a term already there gets the new forms.
    pub fn add(&mut self, text: &str) -> Result<usize, GlossaryError> {
        let mut added = 0;
        for line in text.split([';', '\n']).map(str::trim).filter(|l| !l.is_empty()) {
            let (term, heard) = line.split_once('=').unwrap_or((line, ""));
            let term = clean(term)?;
            let heard: Vec<String> =
                heard.split(',').map(str::trim).filter(|h| !h.is_empty()).map(clean).collect::<Result<_, _>>()?;
            match self.0.iter().position(|e| e.term.eq_ignore_ascii_case(&term)) {
                Some(i) => {
                    let entry = &mut self.0[i];
                    for form in heard {
                        if !entry.heard.contains(&form) {
                            entry.heard.push(form);
                        }
                    }
                }
                None if self.0.len() >= MAX_ENTRIES => return Err(GlossaryError::Full),
                None => self.0.push(Entry { term, heard }),
            }
            added += 1;
        }
        if added == 0 {
            return Err(GlossaryError::Empty);
        }
        Ok(added)
    }

    /// Removes `term`; whether it was there.
    pub fn remove(&mut self, term: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|e| !e.term.eq_ignore_ascii_case(term.trim()));
        self.0.len() != before
    }

    /// The transcription prompt: the terms, as many as fit.
    pub fn prompt(&self) -> Option<String> {
        let mut prompt = String::new();
        for entry in &self.0 {
            if prompt.chars().count() + entry.term.chars().count() + 2 > MAX_PROMPT_CHARS {
                break;
            }
            if !prompt.is_empty() {
                prompt.push_str(", ");
            }
            prompt.push_str(&entry.term);
        }
        (!prompt.is_empty()).then(|| format!("{prompt}."))
    }

    /// `text` with every misheard form (a whole word or phrase, in any case)
    /// written as its term.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (pattern, term) in self.patterns() {
            out = pattern.replace_all(&out, regex::NoExpand(term)).into_owned();
        }
        out
    }

    /// What the glossary adds to a transcript's key for repeats: `None`
    /// when empty (a transcript made without one is the same).
    pub fn key(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| serde_json::to_string(&self.0).unwrap_or_default())
    }

    fn patterns(&self) -> Vec<(Regex, &str)> {
        let forms = self.0.iter().flat_map(|e| e.heard.iter().map(move |h| (h, e.term.as_str())));
        forms
            .filter_map(|(heard, term)| {
                let pattern = format!(r"(?:^|\b){}(?:\b|$)", regex::escape(heard));
                RegexBuilder::new(&pattern).case_insensitive(true).build().ok().map(|re| (re, term))
            })
            .collect()
    }
}

fn clean(text: &str) -> Result<String, GlossaryError> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.chars().count() {
        0 => Err(GlossaryError::Empty),
        n if n > MAX_TERM_CHARS => Err(GlossaryError::TooLong),
        _ => Ok(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_and_their_misheard_forms_are_added_merged_and_removed() {
        let mut g = Glossary::default();
        assert_eq!(g.add("Kubernetes = cooper netties, kuber nettis; Anna Karenina"), Ok(2));
        assert_eq!(g.add("kubernetes = cube rentes"), Ok(1), "the same term, in another case, gains a form");
        assert_eq!(g.0.len(), 2);
        assert_eq!(g.0[0].heard, ["cooper netties", "kuber nettis", "cube rentes"]);
        assert_eq!(g.add("  ;  "), Err(GlossaryError::Empty));
        assert_eq!(g.add(&"x".repeat(61)), Err(GlossaryError::TooLong));
        assert!(g.remove("KUBERNETES") && !g.remove("Kubernetes"));
        assert_eq!(g.prompt().as_deref(), Some("Anna Karenina."));
    }

    #[test]
    fn misheard_forms_are_replaced_as_whole_words_in_any_case() {
        let mut g = Glossary::default();
        g.add("Kubernetes = cooper netties; Şule = shula").unwrap();
        assert_eq!(
            g.apply("We run Cooper Netties. cooper nettiesx stays."),
            "We run Kubernetes. cooper nettiesx stays."
        );
        assert_eq!(g.apply("Shula said: shula!"), "Şule said: Şule!");
        assert_eq!(g.apply("$1 is not a group"), "$1 is not a group");
    }

    #[test]
    fn a_glossary_is_capped_and_its_prompt_fits() {
        let mut g = Glossary::default();
        for i in 0..MAX_ENTRIES {
            g.add(&format!("Term number {i:02} with a longish name")).unwrap();
        }
        assert_eq!(g.add("One too many"), Err(GlossaryError::Full));
        assert!(g.prompt().unwrap().chars().count() <= MAX_PROMPT_CHARS + 1);
        assert_eq!(Glossary::default().key(), None);
        assert!(g.key().is_some());
    }
}
