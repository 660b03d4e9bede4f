//! What the bot says about images: how to ask for one, captions, the
//! gallery, and the aspect ratio.

use crate::chat::Lang;

pub fn imagine_usage(lang: Lang) -> &'static str {
    lang.pick(
        "Напишите описание после команды, например: /imagine рыжий кот в космосе",
        "Write a description after the command, e.g. /imagine a ginger cat in space",
    )
}

pub fn generate_usage(lang: Lang) -> &'static str {
    lang.pick(
        "Напишите описание после команды, например: /generate я на вершине горы",
        "Write a description after the command, e.g. /generate me on a mountain top",
    )
}

pub fn no_images(lang: Lang) -> &'static str {
    lang.pick("Картинок пока нет — попробуйте /imagine.", "No images yet — try /imagine.")
}

/// A generated image's caption: the prompt and, if one was chosen, the
/// aspect ratio as people say it ("16:9"); never our model's name.
pub fn image_caption(prompt: &str, aspect: Option<&str>) -> String {
    let prompt: String = prompt.chars().take(800).collect();
    let label = aspect.and_then(|a| aspect_buttons().into_iter().find(|(k, _)| *k == a)).map(|(_, l)| l);
    match label {
        Some(label) => format!("🎨 {prompt}\n{label}"),
        None => format!("🎨 {prompt}"),
    }
}

pub fn image_buttons(lang: Lang) -> [&'static str; 2] {
    [lang.pick("🔁 Ещё раз", "🔁 Regenerate"), lang.pick("⭐ В избранное", "⭐ Favourite")]
}

pub fn generation_unavailable(lang: Lang) -> &'static str {
    lang.pick("Сервис генерации сейчас недоступен.", "The image service is unavailable right now.")
}

pub fn generation_failed(lang: Lang, reason: &str) -> String {
    match lang {
        Lang::Ru => format!("Генерация не удалась: {reason}"),
        Lang::En => format!("The generation failed: {reason}"),
    }
}

pub fn gallery_caption(index: i64, total: i64, prompt: &str, favourite: bool) -> String {
    let star = if favourite { " ⭐" } else { "" };
    let prompt: String = prompt.chars().take(900).collect();
    format!("🖼 {}/{total}{star}\n{prompt}", index + 1)
}

pub fn gallery_buttons(lang: Lang) -> [&'static str; 3] {
    ["⭐", lang.pick("🗑 Удалить", "🗑 Delete"), lang.pick("🔁 Ещё раз", "🔁 Regenerate")]
}

pub fn image_deleted(lang: Lang) -> &'static str {
    lang.pick("Удалено.", "Deleted.")
}

pub fn favourite_set(lang: Lang, on: bool) -> &'static str {
    match on {
        true => lang.pick("Добавлено в избранное ⭐", "Added to favourites ⭐"),
        false => lang.pick("Убрано из избранного", "Removed from favourites"),
    }
}

pub fn aspect_buttons() -> [(&'static str, &'static str); 5] {
    [
        ("square_hd", "1:1"),
        ("portrait_4_3", "3:4"),
        ("portrait_16_9", "9:16"),
        ("landscape_4_3", "4:3"),
        ("landscape_16_9", "16:9"),
    ]
}

pub fn aspect_set(lang: Lang, label: &str) -> String {
    match lang {
        Lang::Ru => format!("Формат картинок: {label}"),
        Lang::En => format!("Image format: {label}"),
    }
}
