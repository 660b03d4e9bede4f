//! What the bot says about a user's glossary (`/glossary`).

use crate::chat::Lang;

/// The glossary: `entries` as "Term ← misheard, misheard" lines.
pub fn glossary_shown(lang: Lang, entries: &[String]) -> String {
    let head = lang.pick("📖 Ваш глоссарий", "📖 Your glossary");
    let usage = lang.pick(
        "Добавить: /glossary add Kubernetes = кубер нетис, куберн этис\nУдалить: /glossary remove Kubernetes\nОчистить: /glossary clear\nТермины подсказываются модели, а услышанные неверно формы заменяются в каждой расшифровке.",
        "Add: /glossary add Kubernetes = cooper netties, cube rentes\nRemove: /glossary remove Kubernetes\nClear: /glossary clear\nThe terms are given to the model as a hint, and the forms misheard are replaced in every transcript.",
    );
    if entries.is_empty() {
        let empty = lang.pick("пока пуст.", "is empty.");
        return format!("{head} {empty}\n\n{usage}");
    }
    format!("{head}:\n{}\n\n{usage}", entries.iter().map(|e| format!("• {e}")).collect::<Vec<_>>().join("\n"))
}

pub fn glossary_saved(lang: Lang) -> &'static str {
    lang.pick("✅ Глоссарий сохранён.", "✅ Glossary saved.")
}

pub fn glossary_not_there(lang: Lang, term: &str) -> String {
    match lang {
        Lang::Ru => format!("«{term}» в глоссарии нет."),
        Lang::En => format!("“{term}” is not in your glossary."),
    }
}

pub fn glossary_empty_entry(lang: Lang) -> &'static str {
    lang.pick(
        "Напишите термин после add: /glossary add Anna Karenina",
        "Write the term after add: /glossary add Anna Karenina",
    )
}

pub fn glossary_too_long(lang: Lang, max: usize) -> String {
    match lang {
        Lang::Ru => format!("Термин или форма длиннее {max} символов — сократите."),
        Lang::En => format!("A term or form is longer than {max} characters: shorten it."),
    }
}

pub fn glossary_full(lang: Lang, max: usize) -> String {
    match lang {
        Lang::Ru => format!("В глоссарии уже {max} терминов — удалите ненужные: /glossary remove …"),
        Lang::En => format!("Your glossary holds {max} terms already: remove some with /glossary remove …"),
    }
}
