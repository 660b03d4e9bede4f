//! `/glossary`: the names and terms a user's recordings hold, and the forms
//! they are misheard as (see `transcriber::glossary`), kept with the user.

use super::{BotHandler, HandleError, Turn};
use crate::chat::texts;
use crate::transcriber::glossary::{Glossary, GlossaryError, MAX_ENTRIES, MAX_TERM_CHARS};

impl BotHandler {
    pub(super) async fn glossary(&self, turn: Turn, args: &str) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let db = &self.services.db;
        let mut glossary: Glossary = serde_json::from_value(db.glossary(user_id).await?).unwrap_or_default();
        let (verb, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        let changed = match verb.to_ascii_lowercase().as_str() {
            "add" => glossary.add(rest).map(drop),
            "remove" | "delete" => match glossary.remove(rest) {
                true => Ok(()),
                false => return self.say(chat, texts::glossary_not_there(lang, rest.trim())).await,
            },
            "clear" => {
                glossary = Glossary::default();
                Ok(())
            }
            _ => return self.say(chat, texts::glossary_shown(lang, &lines(&glossary))).await,
        };
        let refusal = match changed {
            Ok(()) => {
                db.set_glossary(user_id, &serde_json::to_value(&glossary).unwrap_or_default()).await?;
                let shown = texts::glossary_shown(lang, &lines(&glossary));
                return self.say(chat, format!("{}\n\n{shown}", texts::glossary_saved(lang))).await;
            }
            Err(GlossaryError::Empty) => texts::glossary_empty_entry(lang).to_owned(),
            Err(GlossaryError::TooLong) => texts::glossary_too_long(lang, MAX_TERM_CHARS),
            Err(GlossaryError::Full) => texts::glossary_full(lang, MAX_ENTRIES),
        };
        self.say(chat, refusal).await
    }
}

/// "Term ← misheard, misheard" per entry.
fn lines(glossary: &Glossary) -> Vec<String> {
    let line = |e: &crate::transcriber::glossary::Entry| match e.heard.is_empty() {
        true => e.term.clone(),
        false => format!("{} ← {}", e.term, e.heard.join(", ")),
    };
    glossary.0.iter().map(line).collect()
}
