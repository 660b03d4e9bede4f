//! The release flow of docs/operations.md, run as written: tag, push to a
//! registry (here Debian's docker-registry on loopback), pull, `up -d`.

use std::time::Duration;

use super::deploy::{repo, Deployment};
use super::{aishad_image, engine, figure, image, External, Fakes};

/// The commands between the `release:begin` and `release:end` markers of docs/operations.md.
fn documented_release() -> String {
    let doc = std::fs::read_to_string(repo().join("docs/operations.md")).expect("docs/operations.md");
    let block = doc
        .split("<!-- release:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- release:end -->").next())
        .expect("docs/operations.md marks its release commands");
    block.lines().filter(|l| !l.starts_with("```")).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_documented_release_flow_tags_pushes_pulls_and_starts_the_image() {
    let fakes = Fakes::start().await;
    let external = External::start("stack_release", fakes.bridge).await;
    let env = super::env_without(&fakes, &external, "AISHAD_IMAGE");
    let stack = Deployment::new("docker-compose.bot.simple.yml", "aisha-stack-release", &env);
    let registry = image("AISHAD_REGISTRY");
    let version = env!("CARGO_PKG_VERSION").to_owned();
    let pushed = format!("{registry}/aisha/aishad:{version}");

    let script = documented_release();
    let output = stack.shell(
        &script,
        &[
            ("REGISTRY", format!("{registry}/aisha")),
            ("VERSION", version.clone()),
            ("COMPOSE_PROJECT_NAME", stack.project.clone()),
        ],
    );
    println!("{output}");
    // The docs drop the local copy of the pushed tag, so it is here again only if pulled.
    let pulled = engine::inspect(&pushed, "{{.Id}}");
    assert!(!pulled.is_empty(), "{pushed} was pulled");
    for service in ["bot-primary", "worker-1"] {
        let container = stack.container(service, 1);
        assert_eq!(engine::inspect(&container, "{{.Image}}"), pulled, "{service} runs the pulled image");
        stack.healthy(service, 1, Duration::from_secs(120)).await;
    }
    let catalog = engine::ok(
        std::path::Path::new("."),
        "curl",
        &["-sf", &format!("http://{registry}/v2/aisha/aishad/tags/list")],
    );
    assert!(catalog.contains(&version), "the registry holds the tag: {catalog}");
    let size: u64 = engine::inspect(&aishad_image(), "{{.Size}}").parse().unwrap_or(0);
    figure("aishad image size", format!("{} MB", size / 1_000_000));
}
