//! Every kind of work, from the declarations beside its workers: what the
//! bot names a job by when it tells a user about one, and what a test holds
//! the workers' handlers against (a kind with no handler, or a handler for
//! no kind, fails it by name).

use crate::chat::Lang;
use crate::jobs::kind::Declared;
use crate::{fal_job, transcriber};

/// Every kind, each once.
pub fn all() -> impl Iterator<Item = &'static dyn Declared> {
    transcriber::kinds::ALL.into_iter().chain(fal_job::kinds::ALL)
}

/// What a user calls the kind named `name`; the name itself for one this
/// version does not know (a row a newer one queued).
pub fn title(lang: Lang, name: &str) -> String {
    match all().find(|kind| kind.name() == name) {
        Some(kind) => lang.title(kind.title()).to_owned(),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::kind::Title;

    #[test]
    fn every_kind_is_declared_once_with_a_title_in_both_languages() {
        let names: Vec<&str> = all().map(|kind| kind.name()).collect();
        for name in &names {
            assert_eq!(names.iter().filter(|n| *n == name).count(), 1, "{name} declared twice");
        }
        for kind in all() {
            let Title { ru, en } = kind.title();
            assert!(!ru.is_empty() && !en.is_empty() && ru != en, "{}: {ru:?} / {en:?}", kind.name());
        }
        assert_eq!(title(Lang::En, "transcribe"), "transcription");
        assert_eq!(title(Lang::Ru, "no.such.kind"), "no.such.kind");
    }
}
