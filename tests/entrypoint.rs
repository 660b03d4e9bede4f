//! `aishad entrypoint`, the image's entrypoint now that the image has no
//! shell: as root it gives the volumes to the image's user and runs the
//! command as that user; as that user it says what it cannot write.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_aishad");

/// A directory of this test's own under /tmp, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("aishad-entrypoint-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn as_root_old_root_owned_volumes_become_the_users_and_the_command_runs_as_it_alone() {
    let dir = Scratch::new("root");
    let (old, new) = (dir.path().join("audio"), dir.path().join("temp"));
    std::fs::create_dir(&old).unwrap();
    std::fs::write(old.join("old-file"), "left-by-v1").unwrap();
    let script = format!("id -u; id -g; id -G; touch {}/written", old.display());
    let out = Command::new(BIN)
        .args(["entrypoint", "--user", "4242", "--writable"])
        .arg(&old)
        .arg("--writable")
        .arg(&new)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "4242\n4242\n4242\n", "uid, gid, and no other group");
    for volume in [&old, &new] {
        assert_eq!(std::fs::metadata(volume).unwrap().uid(), 4242, "{} given to the user", volume.display());
    }
    assert_eq!(std::fs::metadata(old.join("written")).unwrap().uid(), 4242);
    assert_eq!(std::fs::read_to_string(old.join("old-file")).unwrap(), "left-by-v1", "what was there is kept");
}

#[test]
fn as_the_user_a_volume_it_cannot_write_is_named_and_the_command_still_runs() {
    let dir = Scratch::new("user");
    let locked = dir.path().join("logs");
    std::fs::create_dir(&locked).unwrap();
    let out = Command::new(BIN)
        .args(["entrypoint", "--writable"])
        .arg(&locked)
        .args(["--", "echo", "ran"])
        .uid(4243)
        .gid(4243)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("{} is not writable by uid 4243", locked.display())), "{said}");
}

#[test]
fn a_command_that_is_not_there_is_named_with_exit_127() {
    let out = Command::new(BIN).args(["entrypoint", "--", "no-such-program"]).output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run no-such-program"));
}
