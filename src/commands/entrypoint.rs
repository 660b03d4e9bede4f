//! `aishad entrypoint`: the image's entrypoint, in place of a shell script
//! (the image has no shell). Started as root — compose files do, so
//! volumes an older image left root-owned keep working — it makes the
//! writable directories, gives them to the image's user and runs the
//! command as that user, with no other groups. Started as anyone else it
//! only says which directory that user cannot write, and runs the command.
//! Either way the command replaces this process: it is PID 1, and gets the
//! signals.

use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::exit;

/// What the image's entrypoint is given.
pub struct Entry {
    /// The uid and gid the command runs as, when started as root.
    pub user: u32,
    /// Directories (volumes) the command writes to.
    pub writable: Vec<PathBuf>,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// Runs the command in this process's place; returns only when it cannot.
pub fn enter(entry: Entry) -> i32 {
    let Some((program, args)) = entry.command.split_first() else {
        eprintln!("aishad: entrypoint: no command to run");
        return 64;
    };
    let mut command = Command::new(program);
    command.args(args);
    if is_root() {
        for dir in &entry.writable {
            if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| chown(dir, Some(entry.user), Some(entry.user))) {
                eprintln!("aishad: entrypoint: cannot give {} to uid {}: {e}", dir.display(), entry.user);
                return exit::SOFTWARE;
            }
        }
        // std drops the supplementary groups too when root sets a uid.
        command.uid(entry.user).gid(entry.user);
    } else {
        for dir in entry.writable.iter().filter(|dir| !writable(dir)) {
            eprintln!(
                "aishad: entrypoint: {} is not writable by uid {}; start the container as root once to fix its ownership",
                dir.display(),
                current_uid()
            );
        }
    }
    let error = command.exec();
    eprintln!("aishad: entrypoint: cannot run {program}: {error}");
    127
}

fn is_root() -> bool {
    current_uid() == 0
}

/// The owner of /proc/self: this process's uid, without unsafe code.
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

/// Whether this process can create a file in `dir`.
fn writable(dir: &std::path::Path) -> bool {
    let probe = dir.join(format!(".aishad-entrypoint-{}", std::process::id()));
    let made = std::fs::File::create(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    made
}
