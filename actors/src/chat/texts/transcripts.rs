//! What the bot says about transcription: progress, transcripts and their
//! digests and files, the language recordings are in, and recordings refused.

use crate::chat::callback::DigestKind;
use crate::chat::Lang;

/// A file over what this bot can fetch (`limit`: 20 MB, or 2000 MB with a local Bot API server).
pub fn too_big(lang: Lang, size: u64, limit: u64) -> String {
    let mb = size as f64 / (1024.0 * 1024.0);
    let limit = limit / (1024 * 1024);
    match lang {
        Lang::Ru => format!("Файл {mb:.1} МБ: Telegram позволяет ботам скачивать файлы только до {limit} МБ. Пришлите запись покороче или сожмите её."),
        Lang::En => format!("The file is {mb:.1} MB: Telegram lets bots download files of up to {limit} MB only. Send a shorter or compressed recording."),
    }
}

pub fn no_transcripts(lang: Lang) -> &'static str {
    lang.pick("Расшифровок пока нет — пришлите голосовое сообщение.", "No transcripts yet — send a voice message.")
}

pub fn transcribing(lang: Lang, done: usize, total: usize) -> String {
    let what = lang.pick("🎧 Расшифровываю", "🎧 Transcribing");
    if total > 1 {
        format!("{what}… {done}/{total}")
    } else {
        format!("{what}…")
    }
}

pub fn transcribed(lang: Lang) -> &'static str {
    lang.pick("✅ Готово", "✅ Done")
}

pub fn no_speech(lang: Lang) -> &'static str {
    lang.pick("В записи не удалось распознать речь.", "No speech was recognised in the recording.")
}

pub fn unreadable_audio(lang: Lang) -> &'static str {
    lang.pick(
        "Не получилось прочитать звук из этого файла. Пришлите другой формат.",
        "I could not read any audio from this file. Please send another format.",
    )
}

pub fn transcription_unavailable(lang: Lang) -> &'static str {
    lang.pick("Сервис расшифровки сейчас недоступен.", "The transcription service is unavailable right now.")
}

pub fn transcript_intro(lang: Lang, seconds: f64) -> String {
    let minutes = (seconds / 60.0).floor() as u64;
    let secs = (seconds % 60.0).round() as u64;
    format!("{} ({minutes}:{secs:02})", lang.pick("📝 Расшифровка", "📝 Transcript"))
}

/// Digest kinds under a transcript: (callback kind, label).
/// The button under a transcript, and the title of the answer.
pub fn digest_button(lang: Lang, kind: DigestKind) -> &'static str {
    match kind {
        DigestKind::Summary => lang.pick("📋 Кратко", "📋 Summary"),
        DigestKind::Actions => lang.pick("✅ Задачи", "✅ Action items"),
        DigestKind::Minutes => lang.pick("🗒 Протокол", "🗒 Meeting minutes"),
    }
}

/// The instruction for a digest, answered in the user's language.
/// `written_in`: a language code the user picked (under a translation);
/// without one, the digest is in the user's language.
pub fn digest_prompt(lang: Lang, kind: DigestKind, written_in: Option<&str>) -> String {
    let task = match kind {
        DigestKind::Actions => "List the action items from this transcript: who does what by when, as a bulleted list. If there are none, say so.",
        DigestKind::Minutes => "Write meeting minutes for this transcript: participants if known, topics discussed, decisions, action items.",
        DigestKind::Summary => "Summarise this transcript in a few short paragraphs, keeping every important fact.",
    };
    let language = match written_in {
        Some(code) => format!("{} ({code})", spoken_language_name(lang, code)),
        None => lang.pick("Russian", "English").to_owned(),
    };
    format!("{task} Answer in {language}. Use plain text, no markdown tables.")
}

pub fn history_title(lang: Lang, page: i64) -> String {
    match lang {
        Lang::Ru => format!("📝 Ваши расшифровки (стр. {}):", page + 1),
        Lang::En => format!("📝 Your transcripts (page {}):", page + 1),
    }
}

pub fn transcript_gone(lang: Lang) -> &'static str {
    lang.pick("Эта расшифровка не найдена.", "That transcript was not found.")
}

/// Languages a recording can be pinned to: (ISO-639-1 code, its own name).
/// `auto` lets the API detect it.
pub const SPOKEN_LANGUAGES: [(&str, &str); 9] = [
    ("auto", "🌐 Auto"),
    ("ru", "Русский"),
    ("en", "English"),
    ("kk", "Қазақша"),
    ("uk", "Українська"),
    ("de", "Deutsch"),
    ("es", "Español"),
    ("fr", "Français"),
    ("tr", "Türkçe"),
];

pub fn spoken_language_name(lang: Lang, code: &str) -> &'static str {
    match code {
        "auto" => lang.pick("определять автоматически", "detect automatically"),
        _ => SPOKEN_LANGUAGES.iter().find(|(c, _)| *c == code).map(|(_, name)| *name).unwrap_or("?"),
    }
}

pub fn spoken_language_line(lang: Lang, code: &str) -> String {
    format!("{} {}", lang.pick("Язык записей:", "Recording language:"), spoken_language_name(lang, code))
}

pub fn spoken_language_set(lang: Lang, code: &str) -> String {
    let hint = match code {
        "auto" => {
            lang.pick("Язык будет определяться по каждой записи.", "The language is detected for each recording.")
        }
        _ => lang.pick(
            "Короткие записи больше не спутаются с другим языком.",
            "Short notes will no longer be mistaken for another language.",
        ),
    };
    format!("✅ {}\n{hint}", spoken_language_line(lang, code))
}

/// The buttons under a transcript for files: (label, callback format).
pub fn file_buttons(lang: Lang, timed: bool) -> Vec<(&'static str, &'static str)> {
    if timed {
        vec![("🎬 .srt", "srt"), ("🎬 .vtt", "vtt"), ("📄 .txt", "txt")]
    } else {
        vec![("📄 .txt", "txt"), (lang.pick("🎬 Субтитры: нет таймкодов", "🎬 Subtitles: no timing"), "none")]
    }
}

pub fn subtitles_caption(lang: Lang, format: &str) -> String {
    match format {
        "srt" | "vtt" => format!("🎬 {} .{format}", lang.pick("Субтитры", "Subtitles")),
        _ => lang.pick("📄 Текст с таймкодами", "📄 Text with timestamps").to_owned(),
    }
}

pub fn no_timing(lang: Lang, model: &str) -> String {
    match lang {
        Lang::Ru => format!(
            "Для субтитров нужны таймкоды, а эта расшифровка сделана моделью без них ({model}). Текст — кнопкой .txt."
        ),
        Lang::En => format!("Subtitles need timestamps, and this transcript was made by a model that gives none ({model}). The text is under .txt."),
    }
}

fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    match total / 3600 {
        0 => format!("{}:{:02}", total / 60, total % 60),
        hours => format!("{hours}:{:02}:{:02}", total / 60 % 60, total % 60),
    }
}

pub fn measured_more(lang: Lang, seconds: f64, extra: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => format!("Длина записи — {}: списано ещё {extra} монет. Баланс: {balance}.", clock(seconds)),
        Lang::En => {
            format!("The recording is {} long: {extra} more coins charged. Balance: {balance}.", clock(seconds))
        }
    }
}

pub fn measured_less(lang: Lang, seconds: f64, amount: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => format!("Длина записи — {}: возвращено {amount} монет. Баланс: {balance}.", clock(seconds)),
        Lang::En => format!("The recording is {} long: {amount} coins refunded. Balance: {balance}.", clock(seconds)),
    }
}

/// A repeat: the audio was transcribed before, so what it cost up front comes back.
pub fn repeat_refunded(lang: Lang, amount: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => {
            format!("🔁 Эту запись уже расшифровывали — бесплатно: возвращено {amount} монет. Баланс: {balance}.")
        }
        Lang::En => format!(
            "🔁 This recording was transcribed before, so it is free: {amount} coins refunded. Balance: {balance}."
        ),
    }
}

pub fn too_long(lang: Lang, seconds: f64, max: std::time::Duration) -> String {
    let max = clock(max.as_secs_f64());
    match lang {
        Lang::Ru => format!("Запись длится {}, а я расшифровываю до {max}. Монеты возвращены.", clock(seconds)),
        Lang::En => {
            format!("The recording is {} long; I transcribe up to {max}. Your coins were refunded.", clock(seconds))
        }
    }
}

pub fn implausible_length(lang: Lang) -> &'static str {
    lang.pick(
        "Файл сообщает длину, которой не может быть при его размере, — похоже, он повреждён. Монеты возвращены.",
        "The file claims a length its size cannot hold — it looks damaged. Your coins were refunded.",
    )
}

// ---- who said what ----

/// The `/settings` line: speakers on or off, and what they cost.
pub fn speakers_line(lang: Lang, on: bool, per_minute: i64) -> String {
    match (lang, on) {
        (Lang::Ru, true) => format!("Кто что сказал: включено ({per_minute} мон./мин)"),
        (Lang::Ru, false) => format!("Кто что сказал: выключено (с ним {per_minute} мон./мин)"),
        (Lang::En, true) => format!("Speakers: on ({per_minute} coins/min)"),
        (Lang::En, false) => format!("Speakers: off ({per_minute} coins/min when on)"),
    }
}

/// The `/settings` button that turns speakers the other way.
pub fn speakers_toggle(lang: Lang, on: bool) -> &'static str {
    match on {
        true => lang.pick("👥 Выключить «кто что сказал»", "👥 Speakers: turn off"),
        false => lang.pick("👥 Включить «кто что сказал»", "👥 Speakers: turn on"),
    }
}

pub fn speakers_set(lang: Lang, on: bool, per_minute: i64) -> String {
    match (lang, on) {
        (Lang::Ru, true) => {
            format!("✅ Теперь в расшифровках будет видно, кто что сказал. Цена: {per_minute} мон. за минуту.")
        }
        (Lang::Ru, false) => "✅ Расшифровки снова без разметки говорящих.".to_owned(),
        (Lang::En, true) => {
            format!("✅ Transcripts now say who said what. Price: {per_minute} coins a minute.")
        }
        (Lang::En, false) => "✅ Transcripts are plain text again, without speakers.".to_owned(),
    }
}

/// The button under a transcript made without speakers.
pub fn who_said_what_button(lang: Lang) -> &'static str {
    lang.pick("👥 Кто что сказал", "👥 Who said what")
}

/// What redoing a transcript with speakers costs, asked before it is charged.
pub fn who_said_what_offer(lang: Lang, seconds: f64, price: i64) -> String {
    let minutes = (seconds / 60.0).ceil().max(1.0) as u64;
    match lang {
        Lang::Ru => format!(
            "👥 Расшифровать эту запись заново, с разметкой «кто что сказал»: {price} мон. ({minutes} мин). Подтвердить?"
        ),
        Lang::En => {
            format!("👥 Transcribe this recording again, saying who said what: {price} coins ({minutes} min). Go ahead?")
        }
    }
}

pub fn who_said_what_confirm(lang: Lang, price: i64) -> String {
    match lang {
        Lang::Ru => format!("✅ Да, {price} мон."),
        Lang::En => format!("✅ Yes, {price} coins"),
    }
}

pub fn already_with_speakers(lang: Lang) -> &'static str {
    lang.pick("В этой расшифровке говорящие уже размечены.", "This transcript says who said what already.")
}
