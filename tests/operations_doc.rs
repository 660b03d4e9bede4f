//! docs/operations.md lists every setting with its variables: checked
//! against the settings code, so the document cannot drift from it.

use aisha_actors::settings::Settings;
use aishad::settings::{env_names, LEGACY_ENV};

fn keys(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    match value.as_object() {
        Some(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                if path != "jobs.kinds" {
                    keys(&path, v, out);
                }
            }
        }
        None => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_setting_and_variable_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md")).unwrap();
    let mut all = Vec::new();
    keys("", &serde_json::to_value(Settings::default()).unwrap(), &mut all);
    assert!(all.len() > 60, "{all:?}");
    let missing: Vec<String> = all
        .iter()
        .flat_map(|key| std::iter::once(format!("`{key}`")).chain(env_names(key).into_iter().map(|n| format!("`{n}`"))))
        .filter(|needle| !doc.contains(needle.as_str()))
        .collect();
    assert!(missing.is_empty(), "docs/operations.md does not mention: {missing:?}");
    for (var, _) in LEGACY_ENV {
        assert!(doc.contains(&format!("`{var}`")), "{var} undocumented");
    }
}

#[test]
fn every_documented_variable_exists() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md")).unwrap();
    let mut all = Vec::new();
    keys("", &serde_json::to_value(Settings::default()).unwrap(), &mut all);
    let known: Vec<String> = all.iter().flat_map(|k| env_names(k)).collect();
    let placeholders = ["AISHA_SECTION__KEY"];
    for word in doc
        .split('`')
        .filter(|w| w.starts_with("AISHA_") && !w.contains('<') && !w.contains('…') && !placeholders.contains(w))
    {
        assert!(known.iter().any(|k| k == word), "docs/operations.md names {word}, which no setting has");
    }
}
