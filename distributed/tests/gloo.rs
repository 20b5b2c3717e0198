//! Two ranks on this machine over Gloo (libtorch's c10d), as `torchrun --nproc_per_node 2` would
//! start them: the test re-runs its own binary as rank 0 and rank 1 with the launcher's
//! variables. Checks the bucketed gradient mean against the arithmetic, the config agreement
//! check, the all-gather of messages, and that a rank that dies makes the other fail within the
//! timeout instead of hanging.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cfkit_distributed::{DistConfig, ProcessGroup};
use tch::{Kind, Tensor};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `test` of this binary as ranks 0 and 1 with `extra` env; returns both outputs.
fn two_ranks(test: &str, extra: &[(&str, &str)]) -> Vec<Output> {
    let port = free_port().to_string();
    let children: Vec<_> = (0..2)
        .map(|rank| {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.args([test, "--exact", "--nocapture", "--test-threads", "1"])
                .env("CFKIT_DIST_CHILD", "1")
                .env("RANK", rank.to_string())
                .env("WORLD_SIZE", "2")
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port);
            for (k, v) in extra {
                c.env(k, v);
            }
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

fn group(timeout_s: u64) -> ProcessGroup {
    let cfg = DistConfig::from_launcher(|k| std::env::var(k).ok(), Duration::from_secs(timeout_s))
        .unwrap()
        .expect("WORLD_SIZE=2");
    ProcessGroup::init(&cfg).unwrap()
}

#[test]
fn two_ranks_average_in_buckets_and_check_agreement() {
    if std::env::var("CFKIT_DIST_CHILD").is_ok() {
        let pg = group(30);
        let r = pg.rank as f64;
        // Three "gradients" of different shapes; 40-byte buckets split them over several
        // all-reduces.
        let grads = [
            Tensor::full([2, 3], r + 1.0, (Kind::Float, tch::Device::Cpu)),
            Tensor::arange(5, (Kind::Float, tch::Device::Cpu)) * (r + 1.0),
            Tensor::full([7], 10.0 * r, (Kind::Float, tch::Device::Cpu)),
        ];
        pg.all_reduce_mean(&grads, 40).unwrap();
        // Means of ranks 0 and 1: (1 + 2) / 2, arange * (1 + 2) / 2, (0 + 10) / 2.
        assert!(grads[0].equal(&Tensor::full([2, 3], 1.5, (Kind::Float, tch::Device::Cpu))));
        assert!(grads[1].equal(&(Tensor::arange(5, (Kind::Float, tch::Device::Cpu)) * 1.5)));
        assert!(grads[2].equal(&Tensor::full([7], 5.0, (Kind::Float, tch::Device::Cpu))));
        pg.agree("config hash", "0123abcd").unwrap();
        let mine = if pg.rank == 0 { "aaaa" } else { "bbbb" };
        // Both ranks fail: the one that differs names both values, rank 0 how many differ.
        let e = pg.agree("config hash", mine).unwrap_err().to_string();
        match pg.rank {
            0 => assert!(e.contains("1 rank(s) differ from rank 0's 'aaaa'"), "{e}"),
            _ => assert!(
                e.contains("rank 0 has 'aaaa'") && e.contains("rank 1 has 'bbbb'"),
                "{e}"
            ),
        }
        // Messages of different lengths (one empty) reach every rank, in rank order.
        let mine: &[u8] = if pg.rank == 0 { b"" } else { b"skipped row 7" };
        let all = pg.all_gather_bytes(mine).unwrap();
        assert_eq!(all, vec![b"".to_vec(), b"skipped row 7".to_vec()]);
        assert_eq!(pg.all_gather_bytes(b"").unwrap(), vec![Vec::<u8>::new(); 2]);
        pg.barrier().unwrap();
        println!("RANK {} OK", pg.rank);
        return;
    }
    for (rank, o) in two_ranks("two_ranks_average_in_buckets_and_check_agreement", &[])
        .iter()
        .enumerate()
    {
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains(&format!("RANK {rank} OK")),
            "rank {rank}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn a_dead_rank_fails_the_others_within_the_timeout() {
    if std::env::var("CFKIT_DIST_CHILD").is_ok() {
        let pg = group(4);
        if pg.rank == 1 {
            if std::env::var("CFKIT_DIST_HANG").is_ok() {
                // Alive but stuck (a hung device, a stopped process): only the timeout helps.
                std::thread::sleep(Duration::from_secs(12));
                return;
            }
            // Dies as `kill -9` would leave it: no goodbye to the group.
            std::process::abort();
        }
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        let mut t = Tensor::ones([4], (Kind::Float, tch::Device::Cpu));
        let e = pg.all_reduce_sum(&mut t).unwrap_err().to_string();
        println!(
            "RANK 0 FAILED AFTER {:.1} s: {e}",
            t0.elapsed().as_secs_f64()
        );
        assert!(t0.elapsed() < Duration::from_secs(15), "{e}");
        assert!(e.contains("allreduce on rank 0 of 2"), "{e}");
        return;
    }
    let outs = two_ranks("a_dead_rank_fails_the_others_within_the_timeout", &[]);
    let out0 = String::from_utf8_lossy(&outs[0].stdout);
    assert!(
        outs[0].status.success() && out0.contains("RANK 0 FAILED AFTER"),
        "rank 0: {out0}\n{}",
        String::from_utf8_lossy(&outs[0].stderr)
    );
    assert!(!outs[1].status.success(), "rank 1 was meant to die");
    eprintln!("{out0}");
    // A rank that hangs: rank 0 gives up after its 4-s timeout.
    let outs = two_ranks(
        "a_dead_rank_fails_the_others_within_the_timeout",
        &[("CFKIT_DIST_HANG", "1")],
    );
    let out0 = String::from_utf8_lossy(&outs[0].stdout);
    assert!(
        outs[0].status.success() && out0.contains("RANK 0 FAILED AFTER"),
        "rank 0 (hang): {out0}\n{}",
        String::from_utf8_lossy(&outs[0].stderr)
    );
    eprintln!("{out0}");
}
