//! What the bot says about avatars: the list, making one (name, gender,
//! photos), training, and its state.

use crate::chat::Lang;
use crate::store::images::AvatarState;

pub fn no_avatar(lang: Lang) -> &'static str {
    lang.pick("У вас ещё нет аватара. Создайте его в /avatars.", "You have no avatar yet. Create one in /avatars.")
}

pub fn avatar_ready(lang: Lang, name: &str) -> String {
    match lang {
        Lang::Ru => format!("✅ Аватар «{name}» готов! Попробуйте: /generate я в горах на закате"),
        Lang::En => format!("✅ Avatar “{name}” is ready! Try: /generate me in the mountains at sunset"),
    }
}

pub fn avatars_title(lang: Lang) -> &'static str {
    lang.pick("👤 Ваши аватары:", "👤 Your avatars:")
}

pub fn avatar_state(lang: Lang, state: AvatarState) -> &'static str {
    match state {
        AvatarState::Collecting => lang.pick("собираю фото", "collecting photos"),
        AvatarState::Queued => lang.pick("в очереди", "queued"),
        AvatarState::Training => lang.pick("обучается", "training"),
        AvatarState::Ready => lang.pick("готов", "ready"),
        AvatarState::Failed => lang.pick("ошибка", "failed"),
        AvatarState::Cancelled => lang.pick("отменён", "cancelled"),
    }
}

pub fn new_avatar_button(lang: Lang) -> &'static str {
    lang.pick("➕ Новый аватар", "➕ New avatar")
}

pub fn ask_avatar_name(lang: Lang) -> &'static str {
    lang.pick("Как назовём аватар? Напишите имя.", "What shall we call the avatar? Send a name.")
}

pub fn ask_gender(lang: Lang) -> &'static str {
    lang.pick("Кто на фото?", "Who is in the photos?")
}

pub fn gender_buttons(lang: Lang) -> [(&'static str, &'static str); 2] {
    [("man", lang.pick("👨 Мужчина", "👨 Man")), ("woman", lang.pick("👩 Женщина", "👩 Woman"))]
}

pub fn ask_photos(lang: Lang, min: usize, max: usize) -> String {
    match lang {
        Lang::Ru => format!("Пришлите от {min} до {max} фото (JPEG, PNG или WebP, от 512 до 4096 пикселей по сторонам): лицо крупно, разные ракурсы и фон."),
        Lang::En => format!("Send {min} to {max} photos (JPEG, PNG or WebP, 512 to 4096 px a side): your face close up, different angles and backgrounds."),
    }
}

pub fn photo_accepted(lang: Lang, count: usize, min: usize, max: usize) -> String {
    match (lang, count >= min) {
        (Lang::Ru, false) => format!("📸 Принято {count}/{max}. Нужно ещё минимум {}.", min - count),
        (Lang::En, false) => format!("📸 Got {count}/{max}. At least {} more needed.", min - count),
        (Lang::Ru, true) => format!("📸 Принято {count}/{max}. Можно обучать!"),
        (Lang::En, true) => format!("📸 Got {count}/{max}. Ready to train!"),
    }
}

pub fn photo_rejected(lang: Lang, why: &str) -> String {
    match lang {
        Lang::Ru => format!("🚫 Фото не принято: {why}"),
        Lang::En => format!("🚫 Photo not accepted: {why}"),
    }
}

pub fn photo_problem(lang: Lang, problem: &str) -> &'static str {
    match problem {
        "format" => lang.pick("нужен JPEG, PNG или WebP", "it must be JPEG, PNG or WebP"),
        "small" => lang.pick("меньше 512 пикселей по короткой стороне", "under 512 px on its short side"),
        "large" => lang.pick("больше 4096 пикселей по длинной стороне", "over 4096 px on its long side"),
        "size" => lang.pick("файл больше 20 МБ", "the file is over 20 MB"),
        "duplicate" => lang.pick("такое фото уже есть", "this photo is already there"),
        _ => lang.pick("уже достаточно фото — нажмите «Обучить»", "there are enough photos already — press Train"),
    }
}

pub fn train_button(lang: Lang) -> &'static str {
    lang.pick("🚀 Обучить", "🚀 Train")
}

pub fn avatar_buttons(lang: Lang) -> [&'static str; 3] {
    [
        lang.pick("🔄 Обновить", "🔄 Refresh"),
        lang.pick("✖️ Отменить", "✖️ Cancel"),
        lang.pick("⭐ Сделать основным", "⭐ Make main"),
    ]
}

pub fn not_enough_photos(lang: Lang, have: usize, min: usize) -> String {
    match lang {
        Lang::Ru => format!("Нужно минимум {min} фото, сейчас {have}."),
        Lang::En => format!("At least {min} photos are needed; there are {have}."),
    }
}

pub fn training_cancelled(lang: Lang, coins: i64) -> String {
    format!("{} {}", lang.pick("Обучение отменено.", "Training cancelled."), super::money::refunded(lang, coins))
}

pub fn photo_outside_avatars(lang: Lang) -> &'static str {
    lang.pick(
        "Фото я принимаю для аватара: /avatars → «Новый аватар». А картинку по описанию нарисую через /imagine.",
        "I take photos to train an avatar: /avatars → “New avatar”. To draw a picture from a description, use /imagine.",
    )
}

pub fn avatar_dialogue_stopped(lang: Lang) -> &'static str {
    lang.pick(
        "Создание аватара прервано. Начать заново — /avatars.",
        "Avatar creation stopped. Start again with /avatars.",
    )
}

pub fn no_avatar_yet(lang: Lang) -> &'static str {
    lang.pick(
        "У вас ещё нет аватара. Нажмите «Новый аватар» — понадобится 10–20 фото.",
        "You have no avatar yet. Press “New avatar” — you'll need 10–20 photos.",
    )
}

pub fn avatar_costs_more(lang: Lang, price: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => format!("Обучение аватара стоит {price} монет, на балансе {balance}. Пополните баланс — и возвращайтесь с 10–20 фото."),
        Lang::En => format!("Training an avatar costs {price} coins; your balance is {balance}. Top up, then come back with 10–20 photos."),
    }
}

pub fn avatar_price(lang: Lang, price: i64) -> String {
    match lang {
        Lang::Ru => {
            format!("Обучение аватара стоит {price} монет; спишем их, когда вы пришлёте фото и начнёте обучение.")
        }
        Lang::En => {
            format!("Training an avatar costs {price} coins, charged when you have sent the photos and start training.")
        }
    }
}
