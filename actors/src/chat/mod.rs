//! What the bot says and shows, below every worker and the bot itself: the
//! texts in both languages, long replies split or sent as a file, inline
//! keyboards, and the notice a user gets when a job of theirs failed.

pub mod feature_texts;
pub mod keyboards;
pub mod money_texts;
pub mod notices;
pub mod reply;
pub mod texts;

pub use texts::Lang;
