//! The lab's life cycle: a second start reuses the cluster, the seed (1M rows) and the build of
//! the first, and a lab killed with SIGKILL leaves nothing running after the next start.
//! (How long each start takes is measured by bench/startup.sh, not asserted here.)

use std::time::Duration;

use crate::harness::*;

#[test]
fn second_start_reuses_the_cluster_the_seed_and_the_build() {
    let home = fresh_home();
    let first = start(home.path());
    let (_, postmaster, services) = run_state(home.path());
    kill(first.child.id(), libc::SIGTERM);
    let status = { first.child }.wait().unwrap();
    assert!(status.success(), "start exits cleanly on SIGTERM: {status}");
    assert!(gone_within(postmaster, Duration::from_secs(10)));
    assert!(services
        .iter()
        .all(|&p| gone_within(p, Duration::from_secs(10))));

    let second = start(home.path());
    eprintln!(
        "first start {:?}, second start {:?}",
        first.took, second.took
    );
    let (code, body) = http_get(&second.url, "/feed");
    assert_eq!(code, 200, "{body}");
    let mut stop = sdlab(home.path());
    stop.args(["stop", "t1-01"]);
    assert!(run(stop, Duration::from_secs(60)).status.success());
    let _ = { second.child }.wait();
    let first_init = step_line(&first.stderr, "init database");
    assert!(first_init.contains("new cluster"), "{first_init}");
    let first_seed = step_line(&first.stderr, "seed rows");
    assert!(first_seed.contains("seeded in"), "{first_seed}");
    let init = step_line(&second.stderr, "init database");
    assert!(init.contains("cached cluster"), "{init}");
    let seed = step_line(&second.stderr, "seed rows");
    assert!(seed.ends_with(" cached"), "{seed}");
    let build = step_line(&second.stderr, "build service");
    assert!(build.ends_with(" up to date"), "{build}");
    assert!(processes_mentioning(home.path().to_str().unwrap()).is_empty());
}

#[test]
fn killing_sdlab_leaves_nothing_behind_after_the_next_start() {
    let home = shared_home();
    let first = start(&home);
    let (owner, postmaster, services) = run_state(&home);
    assert_eq!(owner, first.child.id());
    assert!(alive(postmaster) && services.iter().all(|&p| alive(p)));

    kill(owner, libc::SIGKILL);
    let _ = { first.child }.wait();
    // The service dies with the lab at once (PR_SET_PDEATHSIG)...
    assert!(services
        .iter()
        .all(|&p| gone_within(p, Duration::from_secs(5))));

    // ...and the next start finds the orphaned PostgreSQL and stops it before its own.
    let second = start(&home);
    assert!(
        !alive(postmaster),
        "the crashed run's PostgreSQL (pid {postmaster}) still runs"
    );
    let (_, new_postmaster, new_services) = run_state(&home);
    assert_ne!(new_postmaster, postmaster);

    kill(second.child.id(), libc::SIGTERM);
    assert!({ second.child }.wait().unwrap().success());
    assert!(gone_within(new_postmaster, Duration::from_secs(10)));
    assert!(new_services
        .iter()
        .all(|&p| gone_within(p, Duration::from_secs(10))));
    let left = processes_mentioning(home.to_str().unwrap());
    assert!(left.is_empty(), "left running: {left:?}");
}

fn http_get(base: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let code = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, raw)
}
